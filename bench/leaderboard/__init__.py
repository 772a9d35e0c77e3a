"""Leaderboards as code: YAML specs rebuilt from raw run results, and checks of submissions."""

from bench.leaderboard.build import (
    Board,
    BuildResult,
    LeaderboardRefused,
    build,
    compute,
    find_runs,
    write_board,
)
from bench.leaderboard.spec import LeaderboardSpec, ReportedRow, load_spec, parse_spec
from bench.leaderboard.validate import validate_results

__all__ = [
    "Board",
    "BuildResult",
    "LeaderboardRefused",
    "LeaderboardSpec",
    "ReportedRow",
    "build",
    "compute",
    "find_runs",
    "load_spec",
    "parse_spec",
    "validate_results",
    "write_board",
]
