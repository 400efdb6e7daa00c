"""The admin shows and edits personal fields in clear; the table holds tokens."""

from django.contrib import admin

from lms.models import Course, Enrolment, ForumPost, Invoice, Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Profiles: phone and city decrypted for the form."""

    list_display = ("id", "user", "city")


admin.site.register([Course, Enrolment, ForumPost, Invoice])
