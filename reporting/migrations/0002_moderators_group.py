"""The "Moderators" group and the one permission that opens the moderation pages.

The permission is created here rather than through Report.Meta.permissions so the model file stays
as it is; ``user.has_perm("reporting.moderate")`` works the same either way.
"""

from django.db import migrations

GROUP = "Moderators"
CODENAME = "moderate"
NAME = "Can moderate reports and listings"


def create_group(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    # On a fresh database content types appear only after migrate; make the one we need now.
    report_type, _ = ContentType.objects.get_or_create(app_label="reporting", model="report")
    permission, _ = Permission.objects.get_or_create(
        content_type=report_type, codename=CODENAME, defaults={"name": NAME}
    )
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.filter(name=GROUP).delete()
    Permission.objects.filter(content_type__app_label="reporting", codename=CODENAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0001_reports_and_audit_log"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
