"""Settings from the environment: `DATABASE_URL` and `GRIDCASE_*` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob gridcase reads; one instance per process or per app."""

    model_config = SettingsConfigDict(env_prefix="GRIDCASE_", extra="ignore")

    # With no DATABASE_URL gridcase runs its own PostGIS cluster under state_dir.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GRIDCASE_DATABASE_URL")
    )
    state_dir: Path = Path(".gridcase")
    # The managed cluster cannot run as root; this account owns and runs it when we are root.
    db_os_user: str = "postgres"
    db_name: str = "gridcase"
    pool_size: int = 10
    # Tolerance for gaps and overlaps between sibling areas at import, in square metres.
    import_tolerance_m2: float = 1.0
    # A report in no grid but within this many metres of one goes to the nearest grid.
    route_tolerance_m: float = 50.0
    # Photos: limits per upload (bytes, decoded pixels, photos per submission).
    photo_max_bytes: int = 15 * 1024 * 1024
    photo_max_pixels: int = 40_000_000
    photo_max_count: int = 6
    # Default window for suggesting duplicates (a category may set its own).
    duplicate_radius_m: float = 50.0
    duplicate_window_h: float = 24.0
    host: str = "127.0.0.1"
    port: int = 8000
    # uvicorn's line per request (`gridcase serve`): about as much server CPU as the rest of a
    # lookup (bench/route_http.py); off where a reverse proxy already logs every request.
    access_log: bool = True
    # Base map tiles: an {z}/{x}/{y} URL template for an intranet tile server. None: no tiles at
    # all, so maps need no network (boundaries on a plain background).
    tiles_url: str | None = None
    tiles_attribution: str = ""
    # The big screen's live feeds (/api/v1/dashboard/*) carry tracking codes and descriptions:
    # they need the screen's kiosk key (comma-separated keys; unset: one generated in the state
    # folder, `gridcase screen-url` prints it) or a staff sign-in. `screen_open` leaves them open,
    # for an intranet that wants that and says so.
    screen_keys: str = ""
    # How often the server folds the indicators' appended deltas into the daily rollup (seconds;
    # 0: never, e.g. when `gridcase fold-stats --every N` runs beside several servers).
    fold_seconds: float = 2.0
    screen_open: bool = False
    # A bearer token checked within this many seconds is taken from memory (0: check every
    # request in PostgreSQL); a token revoked by another process stops working within it.
    token_check_seconds: float = 2.0
    # Threads that file API reports in shared transactions (group commit, geo/cases/intake.py).
    intake_writers: int = 2
    # The public channel: what a report from someone not signed in must carry ("optional": a
    # phone number or none; "required": a phone number), and how many reports (and follows) an
    # address and a phone number may file per hour.
    public_contact: Literal["optional", "required"] = "optional"
    public_reports_per_address: int = 10
    public_reports_per_phone: int = 5
    # Notices to followers (geo/notices.py): e-mail through this SMTP server, phone numbers through
    # this webhook (an SMS or messaging gateway). Unset: notices of that kind wait in the outbox.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "gridcase@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    notice_webhook_url: str | None = None
    # How often the server works the outbox (seconds; 0: never, e.g. a separate worker does).
    notice_seconds: float = 5.0
    # The address people reach the server at, for the links in notices ("" : paths only).
    public_url: str = ""
    # Open311 GeoReport v2 (/open311/v2): the jurisdiction_id this endpoint answers to ("": any,
    # it serves one), and who to ask about it (the discovery's contact; "": the admin desk).
    open311_jurisdiction: str = ""
    open311_contact: str = ""
    # Where photos are kept (geo/storage.py): unset, files under <state_dir>/files; "file:///folder";
    # or "s3://bucket/prefix", an S3-compatible object store (geo/objectstore.py) at this endpoint
    # (unset: boto3's own, AWS_ENDPOINT_URL or AWS), in this region, path-style or virtual-host
    # addressed; credentials from boto3's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ...).
    # A store that does not answer within the timeout makes the request a 503, never a wait.
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_addressing_style: Literal["path", "virtual", "auto"] = "path"
    s3_timeout_seconds: float = 5.0
    # Scale (README "Workers, replicas and PgBouncer"): streaming replicas that answer the reads of
    # dashboards, maps, stats, reports and the public (comma-separated URLs; unset in managed
    # mode: the running `gridcase db replica add` replicas), skipped when they lag more than
    # `replica_max_lag_seconds`; `pgbouncer`: DATABASE_URL is a PgBouncer in transaction mode (no
    # server-side prepared statements); LISTEN needs a direct connection: `listen_database_url`
    # (default DATABASE_URL).
    read_database_url: str | None = None
    replica_max_lag_seconds: float = 5.0
    pgbouncer: bool = False
    listen_database_url: str | None = None

    @property
    def state_path(self) -> Path:
        """The state folder as an absolute path."""
        return self.state_dir.expanduser().resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
