"""What a notice to a follower says: composed from the message catalogue, in Chinese."""

from __future__ import annotations

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
