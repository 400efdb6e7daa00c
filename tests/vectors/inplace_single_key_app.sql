BEGIN TRANSACTION;
CREATE TABLE courses (
	id VARCHAR NOT NULL, 
	title VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE forum_posts (
	id INTEGER NOT NULL, 
	author_id VARCHAR NOT NULL, 
	body TEXT NOT NULL, 
	posted_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(author_id) REFERENCES users (id)
);
INSERT INTO "forum_posts" VALUES(7,'u/1','lp1.AQEBAGHiiUFEGwl0JrCsfhCUl6R9Lpvgr8Lakfw_wMLdytHd5TRt9vzPf0yqAW0mbvo4','2026-01-01 00:00:00.000000');
CREATE TABLE invoices (
	id VARCHAR NOT NULL, 
	user_id VARCHAR NOT NULL, 
	billing_name TEXT NOT NULL, 
	amount NUMERIC(10, 2) NOT NULL, 
	issued_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id)
);
CREATE TABLE lp_audit (
	sequence BIGINT NOT NULL, 
	at DATETIME NOT NULL, 
	action VARCHAR(32) NOT NULL, 
	record_type VARCHAR(64), 
	subject_ref VARCHAR(64), 
	actor VARCHAR(255) NOT NULL, 
	outcome VARCHAR(32) NOT NULL, 
	details TEXT NOT NULL, 
	prev_hash VARCHAR(64) NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	CONSTRAINT pk_lp_audit PRIMARY KEY (sequence)
);
CREATE TABLE lp_audit_head (
	id INTEGER NOT NULL, 
	sequence BIGINT NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	seal VARCHAR(64) NOT NULL, 
	CONSTRAINT pk_lp_audit_head PRIMARY KEY (id)
);
CREATE TABLE lp_pending_shreds (
	id INTEGER NOT NULL, 
	subject VARCHAR(255) NOT NULL, 
	scope VARCHAR(64) NOT NULL, 
	mode VARCHAR(16) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE lp_row_states (
	table_name VARCHAR(128) NOT NULL, 
	row_key VARCHAR(255) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	reason TEXT NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (table_name, row_key)
);
CREATE TABLE users (
	id VARCHAR NOT NULL, 
	email TEXT NOT NULL, 
	name TEXT NOT NULL, 
	created_at DATETIME, 
	last_login_at DATETIME, 
	email_bidx VARCHAR(48), 
	PRIMARY KEY (id)
);
INSERT INTO "users" VALUES('u/1','lp1.AQEBAGHiiUFEGwl0muLHB92eV1-er0RrjeAvOGk8oVoCTdJeXfFTGpMP_zfQw7i7vzwRyu1cSg==','lp1.AQEBAGHiiUFEGwl0afl2XfDUCavr81Yab_WYz02n0hKdlzlM7i_f_sGH8w==',NULL,NULL,'b1_OYqH59c_mj-KJwgW7c11qA');
CREATE INDEX ix_users_email_bidx ON users (email_bidx);
COMMIT;
