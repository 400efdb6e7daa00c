"""URLs of the example LMS: the admin, where personal fields show in clear."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
