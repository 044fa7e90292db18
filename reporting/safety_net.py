"""The safety net weighs the fake/unsafe reports on a listing before anything happens to it.

Counting reporters made the net a takedown button: three addresses in one /24 with one browser
hid a verified company's live listing in under a second, and hid twenty listings in 1.6 s. So the
reports are weighed as independent people, not counted as addresses: one network counts once, one
browser reporting several listings within the hour counts once (and so do visitors who each did,
together), a burst within a minute counts once, and reporters whose earlier reports moderators
dismissed count half or nothing. A listing hides only when that weight reaches a threshold that
rises with its age and audience, and never when its company is verified: then moderators are
alerted instead, at once, as they are whenever the net trips at all.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import Count, Max, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from postings.counters import address_hash, client_ip
from postings.models import Posting

from .digest import moderator_emails
from .models import DigestState, ModerationAction, Report

# The reports that count: fake or unsafe, still open, from the last day.
WINDOW = timedelta(hours=24)
# Addresses in one network are one reporter: a /24 or a /48 is one office, provider or proxy.
NETWORK_PREFIX = {4: 24, 6: 48}
# One browser (user agent) reporting this many listings within the hour is one campaign.
CAMPAIGN_LISTINGS = 3
CAMPAIGN_WINDOW = timedelta(hours=1)
# Reports within a minute of each other are one burst, which counts as one reporter.
BURST = timedelta(minutes=1)
# How far back a reporter's dismissed reports count against them.
REPUTATION_WINDOW = timedelta(days=90)
# Each dismissed report halves what a reporter (or their network) counts for, down to nothing.
DISMISSED_WEIGHT = {0: 1.0, 1: 0.5}
# The threshold rises by one per week live (up to this many) ...
MAX_AGE_STEPS = 3
# ... and by one per tenfold audience (views and apply clicks) past AUDIENCE_BASE.
AUDIENCE_BASE = 100


def network_of(address: str) -> str:
    """The reporter's network: "203.0.113.0/24", "2001:db8:1::/48"; "unknown" for no address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{NETWORK_PREFIX[ip.version]}", strict=False))


def report_origin(request) -> dict[str, str]:
    """Who reports, as the report keeps it: salted hashes of the address (the reporter, so that a
    visitor cannot become several by switching browsers), its network and the browser."""
    address = client_ip(request)
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:512]
    return {
        "reporter": address_hash(address),
        "network": address_hash(f"network|{network_of(address)}"),
        "agent": address_hash(f"agent|{user_agent}"),
    }


@dataclass
class Assessment:
    """What the net makes of a listing's reports: ``reporters`` distinct addresses (the plain
    count, which trips the net) weighed as ``weight`` independent reporters, against
    ``threshold``; ``discounts`` say in words why the weight is lower than the count."""

    reporters: int
    networks: int
    weight: float
    threshold: float
    discounts: list[str] = field(default_factory=list)

    @property
    def trips(self) -> bool:
        return self.reporters >= settings.SAFETY_NET_REPORTS

    @property
    def warrants_hiding(self) -> bool:
        return self.trips and self.weight >= self.threshold

    def summary(self) -> str:
        text = (
            f"{self.reporters} different visitors from {self.networks} "
            f"network{'s' if self.networks != 1 else ''} reported it as fake or unsafe within "
            f"24 hours, weighed as {self.weight:g} independent reporter"
            f"{'s' if self.weight != 1 else ''} against a threshold of {self.threshold:g}"
        )
        if self.discounts:
            text += " (" + "; ".join(self.discounts) + ")"
        return text + "."


def threshold_for(posting: Posting, now: datetime) -> float:
    """SAFETY_NET_REPORTS for a new listing with a small audience, one more per week it has been
    live (up to three) and one more per tenfold audience past a hundred (1,000 views: +1)."""
    weeks = max(0, (now - posting.posted_at).days // 7) if posting.posted_at else 0
    audience = posting.view_count + posting.apply_click_count
    audience_steps = max(0, math.floor(math.log10(max(audience, 1) / AUDIENCE_BASE)))
    return settings.SAFETY_NET_REPORTS + min(weeks, MAX_AGE_STEPS) + audience_steps


def counted_reports(posting: Posting, now: datetime) -> list[Report]:
    """The open fake/unsafe reports of the last day, after any moderator's approval of it (what
    a moderator saw and let stand does not count again)."""
    since = now - WINDOW
    approved = (
        ModerationAction.objects.filter(posting=posting, kind=ModerationAction.Kind.APPROVE)
        .aggregate(last=Max("created_at"))
        .get("last")
    )
    if approved and approved > since:
        since = approved
    return list(
        Report.objects.open()
        .filter(posting=posting, reason__in=Report.DANGEROUS, created_at__gte=since)
        .order_by("created_at", "pk")
    )


def _campaigners(reports: list[Report], field: str) -> set[str]:
    """The browsers (``field="agent"``) or visitors (``"reporter"``) that reported
    CAMPAIGN_LISTINGS or more listings within the hour around their report of this one."""
    keys = {getattr(report, field) for report in reports if getattr(report, field)}
    if not keys:
        return set()
    first = min(report.created_at for report in reports) - CAMPAIGN_WINDOW
    last = max(report.created_at for report in reports) + CAMPAIGN_WINDOW
    rows = (
        Report.objects.filter(
            **{f"{field}__in": keys},
            reason__in=Report.DANGEROUS,
            created_at__range=(first, last),
        )
        .values(field)
        .annotate(listings=Count("posting", distinct=True))
    )
    return {row[field] for row in rows if row["listings"] >= CAMPAIGN_LISTINGS}


def _dismissed_counts(reports: list[Report], now: datetime) -> dict[str, int]:
    """Dismissed reports per reporter and per network (keys of both kinds in one dict)."""
    reporters = {report.reporter for report in reports}
    networks = {report.network for report in reports if report.network}
    dismissed = Report.objects.filter(
        Q(reporter__in=reporters) | Q(network__in=networks),
        status=Report.Status.DISMISSED,
        handled_at__gte=now - REPUTATION_WINDOW,
    )
    counts: dict[str, int] = {}
    for reporter, network in dismissed.values_list("reporter", "network"):
        if reporter in reporters:
            counts[reporter] = counts.get(reporter, 0) + 1
        if network and network in networks:
            counts[network] = counts.get(network, 0) + 1
    return counts


def assess(*, posting: Posting, now: datetime | None = None) -> Assessment:
    now = now or timezone.now()
    reports = counted_reports(posting, now)
    threshold = threshold_for(posting, now)
    reporters = len({report.reporter for report in reports})
    networks = len({report.network or report.reporter for report in reports})
    if not reports:
        return Assessment(reporters=0, networks=0, weight=0, threshold=threshold)
    discounts = []
    campaign = _campaigners(reports, "agent")
    # A browser is easily changed, an address less so: visitors who each reported a string of
    # listings within the hour count once together, however many networks they come from.
    serial = _campaigners(reports, "reporter")
    dismissed = _dismissed_counts(reports, now)

    # Reports joined by a network or a campaign browser are one reporter (union-find on keys).
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for report in reports:
        keys = [f"net:{report.network or report.reporter}"]
        if report.agent in campaign:
            keys.append(f"agent:{report.agent}")
        if report.reporter in serial:
            keys.append("serial")
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    if networks < reporters:
        discounts.append("addresses in one network count once")
    if campaign:
        discounts.append(
            f"a browser that reported {CAMPAIGN_LISTINGS}+ listings within the hour counts once"
        )
    if len({report.reporter for report in reports if report.reporter in serial}) > 1:
        discounts.append(
            f"visitors who each reported {CAMPAIGN_LISTINGS}+ listings within the hour count "
            "once together"
        )

    # Each reporter counts for its best report: 1, halved per dismissed report, at its earliest.
    groups: dict[str, tuple[datetime, float]] = {}
    penalised = False
    for report in reports:
        misses = max(dismissed.get(report.reporter, 0), dismissed.get(report.network, 0))
        weight = DISMISSED_WEIGHT.get(misses, 0.0)
        penalised |= misses > 0
        group = root(f"net:{report.network or report.reporter}")
        start, best = groups.get(group, (report.created_at, 0.0))
        groups[group] = (min(start, report.created_at), max(best, weight))
    if penalised:
        discounts.append("reporters whose earlier reports were dismissed count half or nothing")

    # Reporters who first reported within a minute of the burst's first count once together.
    total, burst_start, burst_best, bursty = 0.0, None, 0.0, False
    for start, weight in sorted(groups.values()):
        if burst_start is not None and start - burst_start < BURST:
            burst_best = max(burst_best, weight)
            bursty = True
            continue
        total += burst_best
        burst_start, burst_best = start, weight
    total += burst_best
    if bursty:
        discounts.append("reports within a minute of each other count once")
    return Assessment(
        reporters=reporters,
        networks=networks,
        weight=round(total, 2),
        threshold=threshold,
        discounts=discounts,
    )


# Alerts: every auto_hide and net_alert row is emailed to moderators once, as soon as it commits.
ALERT_KINDS = (ModerationAction.Kind.AUTO_HIDE, ModerationAction.Kind.NET_ALERT)


@transaction.atomic
def alerts_send() -> int:
    """Email moderators the safety net's actions not yet sent, in one message; returns emails.

    The digest's locked row remembers the last action sent, so two runs at once send it once,
    and a run that fails before its commit is repeated by the next (the digest task runs it too).
    """
    DigestState.objects.get_or_create(pk=1)
    state = DigestState.objects.select_for_update().get(pk=1)
    actions = list(
        ModerationAction.objects.filter(pk__gt=state.last_alert_action_id, kind__in=ALERT_KINDS)
        .select_related("posting__company")
        .order_by("pk")
    )
    recipients = moderator_emails()
    if not actions or not recipients:
        return 0
    context = {
        "actions": actions,
        "hidden": sum(action.kind == ModerationAction.Kind.AUTO_HIDE for action in actions),
        "site_url": settings.SITE_URL,
        "site_name": settings.SITE_NAME,
        "queue_url": settings.SITE_URL + reverse("moderation:queue"),
    }
    subject = " ".join(
        render_to_string("reporting/email/safety_net_alert_subject.txt", context).split()
    )
    body = render_to_string("reporting/email/safety_net_alert.txt", context)
    sent = send_mass_mail([(subject, body, None, [email]) for email in recipients])
    state.last_alert_action_id = actions[-1].pk
    state.save(update_fields=["last_alert_action_id"])
    return sent
