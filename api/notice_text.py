"""What a notice to a follower says (composed from the message catalogue, in Chinese), and a nudge
for the outbox worker when a case has just changed."""

from __future__ import annotations

from fastapi import BackgroundTasks, Request

from api.i18n import ACTION_LABELS, STATE_LABELS, Lang, messages
from geo.notices import Compose, Message, NoticeFacts
from geo.stats import CHINA


def composer(public_url: str, lang: Lang = "zh") -> Compose:
    """The `Compose` of the outbox: state in words, the unit, and for the reporter the link."""
    t = messages(lang)
    base = public_url.rstrip("/")

    def compose(facts: NoticeFacts) -> Message:
        state = STATE_LABELS[lang].get(facts.state, facts.state)
        if facts.action not in ("close", "close_off"):
            state = f"{ACTION_LABELS[lang].get(facts.action, facts.action)} → {state}"
        lines = [
            t["notice_body"].format(
                category=facts.category, state=state, at=f"{facts.at.astimezone(CHINA):%Y-%m-%d %H:%M}"
            )
        ]
        if facts.unit:
            lines.append(t["notice_unit"].format(unit=facts.unit))
        if facts.tracking_code:  # the reporter's own: it opens the case page and its rating
            url = f"{base}/track/{facts.tracking_code}"
            key = "notice_rate" if facts.state == "closed" else "notice_link"
            lines.append(t[key].format(code=facts.tracking_code, url=url))
        return Message(subject=t["notice_subject"].format(product=t["pub_title"]), body="\n".join(lines))

    return compose


def send_notices_soon(request: Request, background: BackgroundTasks) -> None:
    """Have the outbox worker look again once this answer is sent: a case action's session has
    committed by then (api/deps.py), so the worker finds the new notices at once."""
    worker = getattr(request.app.state, "notices", None)
    if worker is not None:
        background.add_task(worker.wake)
