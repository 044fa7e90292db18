
app_name = "accounts"

urlpatterns: list = [
    # Sign-up, verification, log-in, password and company views come here.
]
