from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.SignupView.as_view(), name="signup"),
    path("signup/sent/", views.SignupSentView.as_view(), name="signup_sent"),
    path("verify/resend/", views.ResendVerificationView.as_view(), name="verify_resend"),
    path("verify/<str:token>/", views.VerifyEmailView.as_view(), name="verify"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="accounts/password_change_done.html"
        ),
        name="password_change_done",
    ),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("company/", views.CompanyUpdateView.as_view(), name="company"),
    path("company/new/", views.CompanyCreateView.as_view(), name="company_create"),
    path("company/members/", views.CompanyMembersView.as_view(), name="company_members"),
    path(
        "company/invitations/<int:pk>/cancel/",
        views.InvitationCancelView.as_view(),
        name="invitation_cancel",
    ),
    path("company/<slug:slug>/logo/", views.company_logo, name="company_logo"),
    path("invitations/<str:token>/", views.InvitationView.as_view(), name="invitation"),
]
