"""Throughput of field encryption and pseudonyms against the bare primitives.

Run ``python -m benchmarks.bench_crypto`` (``--quick`` for a short run). Each row compares
learnprivacy with a floor measured in the same process, so the ratios hold on any machine:

* ``field_cipher_vs_aesgcm``: ``FieldCipher.encrypt`` then ``decrypt`` of e-mail-sized
  values, against bare ``AESGCM.encrypt``/``decrypt`` with a random nonce and the same
  associated data (target: at least 0.75 of the bare throughput); the same in batches
  of a record's four fields through ``encrypt_many``/``decrypt_many`` (same target);
* ``field_cipher_vs_fernet``: the same, against Fernet ``encrypt``/``decrypt`` (target:
  at least 5 times Fernet);
* ``field_cipher_raw_vs_aesgcm``: ``encrypt_raw`` then ``decrypt_raw`` (the binary token,
  for BLOB/bytea columns) against the same floor (target: at least 0.9);
* ``pseudonym_vs_hmac``: ``Pseudonymiser.pseudonym`` against a pre-keyed ``hmac`` object
  copied per identifier (target: at least 0.6);
* ``pseudonym_vs_fernet``: the same, against Fernet ``encrypt`` of the identifier, the
  way encrypted-field packages tokenise (target: at least 5 times Fernet).

Values are spread over 1,000 learners whose keys are already cached, as in a running
application (key creation, one wrap per learner and scope, is not timed); the bare run
uses one AESGCM object per learner too. Both runs seal and open the same values under
associated data of the same layout and length (header, subject, context; only the key
id differs), which the floor gets pre-computed and the library builds on each call. The
floor draws each nonce with ``os.urandom``; the library draws 4,096 per call, inside its
own timed work. ``value`` and ``floor`` are operations per second (an encrypt+decrypt
pair counts as one operation), from the median round of at least five interleaved
rounds, with the spread of the library's rate over the rounds.

``--breakdown`` measures where the time of a pair goes instead: the floor, then the
same loop with one more piece of the library's work added at each step (its pooled
nonces, the associated data built per call, the text token, the method calls and
checks of ``FieldCipher``), then the binary token from the associated-data step
(``encrypt_raw``/``decrypt_raw``), all interleaved, as CPU microseconds per pair.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
import time
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks._measure import MIN_ROUNDS, Sample, ratio_row
from learnprivacy.crypto import FieldCipher, Keyring, Pseudonymiser, _token
from learnprivacy.crypto._nonce import random_nonce

_SUBJECTS = 1_000
#: Share of the bare AES-GCM throughput an encrypt+decrypt pair must keep.
PAIR_TARGET = 0.75
#: The same for binary tokens (``encrypt_raw``/``decrypt_raw``, for BLOB/bytea columns).
RAW_TARGET = 0.9


def _samples(
    runs: dict[str, Callable[[int, int], int]], count: int, repeats: int
) -> tuple[dict[str, Sample], dict[str, int]]:
    """CPU seconds of each round of each run over ``count`` items, and the items each
    run processes per round.

    The items are cut into chunks; every round times each run on each chunk in turn, so
    the runs are interleaved finely and meet the same load; a round's time is the sum of
    its chunks. CPU time of this thread, not wall time.
    """
    chunk = max(count // 10, 1)
    bounds = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    rounds = max(repeats, MIN_ROUNDS)
    times: dict[str, list[float]] = {name: [0.0] * rounds for name in runs}
    done = dict.fromkeys(runs, 0)
    for round_ in range(rounds):
        for start, stop in bounds:
            for name, run in runs.items():
                began = time.thread_time()
                processed = run(start, stop)
                times[name][round_] += time.thread_time() - began
                if round_ == 0:
                    done[name] += processed
    return {name: Sample(tuple(values)) for name, values in times.items()}, done


def _row(
    name: str,
    runs: tuple[str, str],
    samples: dict[str, Sample],
    done: dict[str, int],
    target: float,
) -> dict[str, Any]:
    """Library run against floor run, as rates (operations per CPU second)."""
    value, floor = runs
    # Both rates over the same work: scale the floor's time to the library's item count.
    scaled = Sample(tuple(t * done[value] / done[floor] for t in samples[floor].seconds))
    return ratio_row(name, samples[value], scaled, target=target, work=done[value], unit="ops/s")


def _bare(values: list[str], keys: list[AESGCM], datas: list[bytes]) -> Callable[[int, int], int]:
    """The floor: each of ``values`` sealed and opened with bare AES-GCM under ``keys[i]``
    and associated data ``datas[i]``, with a nonce from ``os.urandom``."""

    def bare(start: int, stop: int) -> int:
        urandom = os.urandom
        for value, aead, data in zip(
            values[start:stop], keys[start:stop], datas[start:stop], strict=True
        ):
            nonce = urandom(12)
            sealed = aead.encrypt(nonce, value.encode(), data)
            aead.decrypt(nonce, sealed, data).decode()
        return stop - start

    return bare


def _pairs(
    encrypt: Callable[..., Any],
    decrypt: Callable[..., Any],
    values: list[str],
    subjects: list[str],
    contexts: list[str],
) -> Callable[[int, int], int]:
    """The library's run: each of ``values`` encrypted for ``subjects[i]`` at
    ``contexts[i]`` with ``encrypt``, and its token opened with ``decrypt``."""

    def pairs(start: int, stop: int) -> int:
        for value, subject, context in zip(
            values[start:stop], subjects[start:stop], contexts[start:stop], strict=True
        ):
            decrypt(
                encrypt(value, subject=subject, context=context), subject=subject, context=context
            )
        return stop - start

    return pairs


def _cipher_rows(count: int, repeats: int) -> list[dict[str, object]]:
    subjects = [f"L{i % _SUBJECTS}" for i in range(count)]
    contexts = [f"Learner/{s}/email" for s in subjects]
    values = [f"learner{i:06d}@example.org" for i in range(count)]

    cipher = FieldCipher(Keyring.generate())
    for subject in set(subjects):
        cipher.encrypt("warm-up", subject=subject, context="warm-up")

    # The bare run gets the very associated data FieldCipher authenticates, pre-computed.
    head = _token.header(_token.KIND_TEXT, bytes(8))
    associated = [
        head + _token.subject_part(s) + c.encode() for s, c in zip(subjects, contexts, strict=True)
    ]
    # One bare AESGCM object per learner, like FieldCipher's cached data keys, so both
    # runs touch the same number of key schedules.
    per_subject = {s: AESGCM(AESGCM.generate_key(bit_length=256)) for s in set(subjects)}
    aeads = [per_subject[s] for s in subjects]
    fernet = Fernet(Fernet.generate_key())

    # The text token, then the binary one.
    field_cipher = _pairs(cipher.encrypt, cipher.decrypt, values, subjects, contexts)
    field_cipher_raw = _pairs(cipher.encrypt_raw, cipher.decrypt_raw, values, subjects, contexts)
    bare = _bare(values, aeads, associated)

    def fernet_run(start: int, stop: int) -> int:
        # Fernet is slow: a tenth of the values is enough for a stable rate.
        stop = start + max((stop - start) // 10, 1)
        encrypt, decrypt = fernet.encrypt, fernet.decrypt
        for value in values[start:stop]:
            decrypt(encrypt(value.encode())).decode()
        return stop - start

    # Batches: a record's four fields at a time (one learner per record, round-robin over
    # the same 1,000 learners), through encrypt_many/decrypt_many as the store uses them.
    group = 4
    owners = [f"L{(i // group) % _SUBJECTS}" for i in range(count)]
    places = [f"Learner/{s}/field{i % group}" for i, s in enumerate(owners)]
    for subject in set(owners):
        cipher.encrypt("warm-up", subject=subject, context="warm-up")
    owner_aeads = [per_subject[s] for s in owners]
    owner_associated = [
        head + _token.subject_part(s) + c.encode() for s, c in zip(owners, places, strict=True)
    ]

    def field_cipher_batch(start: int, stop: int) -> int:
        encrypt_many, decrypt_many = cipher.encrypt_many, cipher.decrypt_many
        for first in range(start, stop, group):
            subject, where = owners[first], places[first : first + group]
            tokens = encrypt_many(values[first : first + group], subject=subject, contexts=where)
            decrypt_many(tokens, subject=subject, contexts=where)
        return stop - start

    bare_grouped = _bare(values, owner_aeads, owner_associated)

    runs = {
        "cipher": field_cipher,
        "bare": bare,
        "raw": field_cipher_raw,
        "fernet": fernet_run,
        "batch": field_cipher_batch,
        "bare_grouped": bare_grouped,
    }
    samples, done = _samples(runs, count - count % group, repeats)
    return [
        _row("field_cipher_vs_aesgcm", ("cipher", "bare"), samples, done, PAIR_TARGET),
        _row("field_cipher_vs_fernet", ("cipher", "fernet"), samples, done, 5.0),
        _row("field_cipher_raw_vs_aesgcm", ("raw", "bare"), samples, done, RAW_TARGET),
        _row("field_cipher_batch_vs_aesgcm", ("batch", "bare_grouped"), samples, done, PAIR_TARGET),
    ]


def _breakdown(count: int, repeats: int) -> list[tuple[str, float, float | None]]:
    """CPU microseconds per encrypt+decrypt pair of the floor and of each step from it to
    ``FieldCipher`` (text tokens, then binary ones), each step adding one piece of the
    library's work (interleaved); with each, the microseconds of the step it adds to."""
    subjects = [f"L{i % _SUBJECTS}" for i in range(count)]
    contexts = [f"Learner/{s}/email" for s in subjects]
    places = [c.encode() for c in contexts]
    values = [f"learner{i:06d}@example.org" for i in range(count)]
    cipher = FieldCipher(Keyring.generate())
    for subject in set(subjects):
        cipher.encrypt("warm-up", subject=subject, context="warm-up")
        cipher.encrypt("warm-up", subject=subject, context="warm-up")
    # The library's own keys, unpacked as its short paths hold them: header text, AEAD,
    # associated-data prefix (header and subject).
    texts = [cipher._texts[s] for s in subjects]
    associated = [t[2] + place for t, place in zip(texts, places, strict=True)]
    keys = [t[1] for t in texts]
    encode, decode = _token.ENCODE_TABLE, _token.DECODE_TABLE

    def pooled(start: int, stop: int) -> int:
        draw = random_nonce
        for at in range(start, stop):
            aead, data, nonce = keys[at], associated[at], draw()
            aead.decrypt(nonce, aead.encrypt(nonce, values[at].encode(), data), data).decode()
        return stop - start

    def built(start: int, stop: int) -> int:
        for value, text, context in zip(
            values[start:stop], texts[start:stop], contexts[start:stop], strict=True
        ):
            _, aead, prefix, _ = text
            nonce = random_nonce()
            sealed = aead.encrypt(nonce, value.encode(), prefix + context.encode())
            aead.decrypt(nonce, sealed, prefix + context.encode()).decode()
        return stop - start

    def texted(start: int, stop: int) -> int:
        chunk = zip(values[start:stop], texts[start:stop], contexts[start:stop], strict=True)
        for value, (head, aead, prefix, _), context in chunk:
            nonce = random_nonce()
            sealed = nonce + aead.encrypt(nonce, value.encode(), prefix + context.encode())
            token = head + b2a_base64(sealed, newline=False).translate(encode).decode()
            if token.startswith(head):
                raw = a2b_base64(token.encode().translate(decode)[20:], strict_mode=True)
                aead.decrypt(raw[:12], raw[12:], prefix + context.encode()).decode()
        return stop - start

    def binary(start: int, stop: int) -> int:
        chunk = zip(values[start:stop], texts[start:stop], contexts[start:stop], strict=True)
        for value, (_, aead, prefix, head), context in chunk:
            nonce = random_nonce()
            token = head + nonce + aead.encrypt(nonce, value.encode(), prefix + context.encode())
            if token[:12] == head:
                aead.decrypt(token[12:24], token[24:], prefix + context.encode()).decode()
        return stop - start

    built_step = "+ associated data built per call (prefix + context.encode())"
    binary_step = "binary: associated data built, + the binary token"
    steps = {
        "floor: bare AES-GCM, os.urandom nonce, associated data given": _bare(
            values, keys, associated
        ),
        "the library's pooled nonces instead of os.urandom": pooled,
        built_step: built,
        "+ the text token (base64, URL-safe alphabet, header text)": texted,
        "+ FieldCipher's calls, look-ups and checks (= FieldCipher)": _pairs(
            cipher.encrypt, cipher.decrypt, values, subjects, contexts
        ),
        binary_step: binary,
        "binary: + FieldCipher's calls and checks (= encrypt_raw/decrypt_raw)": _pairs(
            cipher.encrypt_raw, cipher.decrypt_raw, values, subjects, contexts
        ),
    }
    samples, done = _samples(steps, count, repeats)
    micros = {name: samples[name].median / done[name] * 1e6 for name in steps}
    # Each step against the one before it; the binary token's chain starts again from
    # the associated data built per call.
    names = list(steps)
    bases: list[str | None] = [None, *names[:-1]]
    bases[names.index(binary_step)] = built_step
    return [
        (name, micros[name], None if base is None else micros[base])
        for name, base in zip(names, bases, strict=True)
    ]


def _batch_sizes(count: int, repeats: int, sizes: tuple[int, ...]) -> list[tuple[int, float]]:
    """Share of the bare AES-GCM throughput kept by ``encrypt_many``/``decrypt_many`` when
    each call holds ``size`` values of one learner (learners round-robin), per size."""
    cipher = FieldCipher(Keyring.generate())
    runs: dict[str, Callable[[int, int], int]] = {}
    for size in sizes:
        owners = [f"L{(i // size) % _SUBJECTS}" for i in range(count)]
        places = [f"Learner/{s}/field{i % size}" for i, s in enumerate(owners)]
        values = [f"learner{i:06d}@example.org" for i in range(count)]
        for subject in set(owners):
            cipher.encrypt("warm-up", subject=subject, context="warm-up")
            cipher.encrypt("warm-up", subject=subject, context="warm-up")
        texts = [cipher._texts[s] for s in owners]
        keys = [t[1] for t in texts]
        associated = [t[2] + p.encode() for t, p in zip(texts, places, strict=True)]
        # Each call's values and contexts are lists already, as a caller holds them.
        calls = [
            (owners[at], values[at : at + size], places[at : at + size])
            for at in range(0, count - count % size, size)
        ]

        def batches(
            start: int, stop: int, calls: list[tuple[str, list[str], list[str]]] = calls
        ) -> int:
            encrypt_many, decrypt_many = cipher.encrypt_many, cipher.decrypt_many
            done = 0
            for subject, some, where in calls[
                start * len(calls) // count : stop * len(calls) // count
            ]:
                tokens = encrypt_many(some, subject=subject, contexts=where)
                decrypt_many(tokens, subject=subject, contexts=where)
                done += len(some)
            return done

        runs[f"batch{size}"], runs[f"bare{size}"] = batches, _bare(values, keys, associated)
    samples, done = _samples(runs, count, repeats)
    return [
        (
            size,
            (samples[f"bare{size}"].median / done[f"bare{size}"])
            / (samples[f"batch{size}"].median / done[f"batch{size}"]),
        )
        for size in sizes
    ]


def _pseudonym_rows(count: int, repeats: int) -> list[dict[str, object]]:
    identifiers = [f"L{i}" for i in range(count)]
    key = os.urandom(32)
    pseudonymiser = Pseudonymiser(key, domain="employer-report")
    prekeyed = hmac.new(key, b"employer-report", hashlib.sha256)
    fernet = Fernet(Fernet.generate_key())

    def pseudonyms(start: int, stop: int) -> int:
        pseudonym = pseudonymiser.pseudonym
        for identifier in identifiers[start:stop]:
            pseudonym(identifier)
        return stop - start

    def bare(start: int, stop: int) -> int:
        copy = prekeyed.copy
        for identifier in identifiers[start:stop]:
            mac = copy()
            mac.update(identifier.encode())
            mac.digest()
        return stop - start

    def fernet_run(start: int, stop: int) -> int:
        stop = start + max((stop - start) // 10, 1)
        encrypt = fernet.encrypt
        for identifier in identifiers[start:stop]:
            encrypt(identifier.encode())
        return stop - start

    runs = {"pseudonym": pseudonyms, "hmac": bare, "fernet": fernet_run}
    samples, done = _samples(runs, count, repeats)
    return [
        _row("pseudonym_vs_hmac", ("pseudonym", "hmac"), samples, done, 0.6),
        _row("pseudonym_vs_fernet", ("pseudonym", "fernet"), samples, done, 5.0),
    ]


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure every comparison; rows hold name, value, floor, ratio, target, ok and unit."""
    count, repeats = (10_000, 3) if quick else (100_000, 5)
    return _cipher_rows(count, repeats) + _pseudonym_rows(count, repeats)


def main(argv: list[str] | None = None) -> int:
    """Print the rows as a table; exit status 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 values, 3 rounds")
    parser.add_argument(
        "--breakdown", action="store_true", help="where a pair's time goes, step by step"
    )
    args = parser.parse_args(argv)
    if args.breakdown:
        count, repeats = (10_000, 5) if args.quick else (100_000, 7)
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for name, micros, base in _breakdown(count, repeats):
            step = "" if base is None else f"{micros - base:+7.3f}"
            print(f"{name:70} {micros:6.3f} µs/pair {step}")
        for size, share in _batch_sizes(count, repeats, (1, 4, 25, 100)):
            print(
                f"encrypt_many + decrypt_many, {size:3} values of one learner a call: "
                f"{share:.3f} of bare AES-GCM"
            )
        return 0
    rows = run(quick=args.quick)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"{'benchmark':29} {'ops/s':>10} {'spread':>19} {'floor ops/s':>12} {'ratio':>6} "
        f"{'target':>7}  ok"
    )
    for row in rows:
        print(
            f"{row['name']:29} {row['value']:>10,.0f} {row['spread']:>19} "
            f"{row['floor']:>12,.0f} {row['ratio']:>6.3f} {row['target']:>7}  "
            f"{'yes' if row['ok'] else 'NO'}"
        )
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
