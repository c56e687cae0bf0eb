"""What the Printess simulator sends: status/get answers, callback bodies, `result` objects.

Shapes follow Printess's OpenAPI document and its shop plugins (docs/VENDORS.md): `r` maps
document names to URLs, `d` the same names to output file names, `p` lists pictures, `zip` and
`ff` are file URLs; status/get carries `result.meta: null`, the callback carries `meta`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal


@dataclass
class SimJob:
    job_id: str
    order_id: str
    template_name: str
    origin: str | None
    external_order_id: str | None
    meta: str | None
    callback_url: str | None
    files_base: str
    created_at: datetime
    ready_at: float  # monotonic; math.inf = never
    fails: bool
    lose_callback: bool
    shape: Literal["callback", "status"] = "callback"
    callback_status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def is_final(self, now: float) -> bool:
        return now >= self.ready_at


def result_body(job: SimJob, *, with_meta: bool) -> dict[str, Any]:
    """`ProcessResults` of a finished job."""
    meta = job.meta if with_meta else None
    if job.fails:
        return {"r": None, "d": None, "p": None, "meta": meta, "zip": None, "ff": None}
    base = f"{job.files_base}/files/{job.job_id}"
    return {
        "r": {"document": f"{base}/document.pdf"},
        "d": {"document": f"{job.job_id}_1.pdf"},
        "p": [{"d": "document", "u": f"{base}/preview-0.png", "i": 0}],
        "meta": meta,
        "zip": f"{base}/output.zip",
        "ff": f"{base}/formfields.json",
        "s": {"t": 1, "p": 0.2, "c": 0.1, "o": 0.0, "d": 0.0},
    }


def status_body(job: SimJob, *, final: bool, with_meta: bool = False) -> dict[str, Any]:
    """`BackendJobStatus` for a job Printess knows."""
    stamp = (job.created_at + timedelta(seconds=0.5)).isoformat()
    return {
        "jobId": job.job_id,
        "isFinalStatus": final,
        "isSuccess": final and not job.fails,
        "errorDetails": "Simulated render failure" if final and job.fails else None,
        "enqueuedOn": job.created_at.isoformat(),
        "processingOn": stamp,
        "finishedOn": datetime.now(UTC).isoformat() if final and not job.fails else None,
        "failedOn": datetime.now(UTC).isoformat() if final and job.fails else None,
        "templateName": job.template_name,
        "result": result_body(job, with_meta=with_meta) if final else None,
    }


def callback_body(job: SimJob) -> dict[str, Any]:
    """The produce callback: `isFailure`/`failureDetails`, `meta` at the top and in `result`."""
    return {
        "jobId": job.job_id,
        "orderId": job.order_id,
        "userId": "sim-user",
        "templateName": job.template_name,
        "externalOrderId": job.external_order_id,
        "meta": job.meta,
        "result": result_body(job, with_meta=True),
        "isFailure": job.fails,
        "failureDetails": "Simulated render failure" if job.fails else None,
    }


def unknown_job_body(job_id: str) -> dict[str, Any]:
    """status/get's answer for a job Printess does not know (or no longer knows)."""
    return {
        "jobId": job_id,
        "isFinalStatus": False,
        "isSuccess": False,
        "errorDetails": None,
        "enqueuedOn": None,
        "processingOn": None,
        "finishedOn": None,
        "failedOn": None,
        "templateName": None,
        "result": None,
    }
