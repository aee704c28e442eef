"""What a simulated stream holds: the ground truth a test or a demo checks the engine against."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class SimFire(_Frozen):
    name: str  # F1, F2, ...
    kind: str  # full | quiet | cameras | remote (see firewatch.sim.scenario)
    start: datetime  # ignition
    end: datetime  # put out (may be after the end of the stream)
    lat: float
    lon: float
    cell_id: str
    team: str | None
    sensors: list[str]  # sensors that read over threshold
    cameras: list[str]  # cameras that reported it
    records: dict[str, int]  # detections per source


class NoiseEvent(_Frozen):
    kind: str  # sensor_spike | camera_weak | camera_suspect | satellite_low
    device_id: str
    observed_at: datetime
    lat: float
    lon: float


class StaticSite(_Frozen):
    lat: float
    lon: float
    cell_id: str | None
    records: int  # one per satellite pass, all `static: true`


class MalformedLine(_Frozen):
    line: int  # 1-based
    kind: str


class DuplicateLine(_Frozen):
    line: int
    original_line: int  # the earlier, identical line


class LateLine(_Frozen):
    line: int
    device_id: str
    observed_at: datetime
    delay_s: float  # arrival minus observed_at
    beyond_grace: bool  # later than the engine's 10-minute grace period


class Outage(_Frozen):
    """A device silent over [start, end): its reports in between are never sent."""

    device_id: str
    source: str  # sensor | camera
    start: datetime
    end: datetime
    cause: str  # fault | power_cut


class SimSummary(_Frozen):
    seed: int
    start: datetime
    hours: float
    lines: int
    records: int  # well-formed lines, duplicate copies included
    by_source: dict[str, int]  # well-formed lines per source, duplicate copies included
    fires: list[SimFire]
    noise: list[NoiseEvent]
    static_site: StaticSite
    malformed: list[MalformedLine]
    duplicates: list[DuplicateLine]
    late: list[LateLine]
    outages: list[Outage] = []  # devices silent for a while (outages.py)
    heartbeats: int = 0  # the towers' clear-view status records

    def render(self) -> str:
        """One line for the command line."""
        sources = ", ".join(f"{n:,} {s}" for s, n in self.by_source.items())
        beyond = sum(1 for late in self.late if late.beyond_grace)
        fires = "; ".join(
            f"{f.name} {f.kind} {f.start:%m-%d %H:%M} {f.cell_id}" for f in self.fires
        )
        return (
            f"{self.lines:,} lines, {self.records:,} records ({sources}); "
            f"{len(self.malformed)} malformed, {len(self.duplicates)} duplicates, "
            f"{len(self.late)} late ({beyond} beyond grace); {len(self.outages)} devices "
            f"silent for a while; fires: {fires or 'none'}"
        )
