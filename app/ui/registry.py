"""The app's pages, in navigation order (pure data: the router and the tests read it).

Adding a page is one line here plus its thin script in ``app/app_pages/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[1]
PAGES_DIR = APP_DIR / "app_pages"


@dataclass(frozen=True)
class PageSpec:
    script: str  # file in app/app_pages/
    title: str
    icon: str
    url_path: str
    default: bool = False

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.script


PAGES: list[PageSpec] = [
    PageSpec("home.py", "Home", ":material/home:", "home", default=True),
    PageSpec("data.py", "Data", ":material/database:", "data"),
    PageSpec("embedding_map.py", "Embedding map", ":material/scatter_plot:", "map"),
    PageSpec("clusters.py", "Clusters", ":material/bubble_chart:", "clusters"),
    PageSpec("architecture.py", "Architecture", ":material/account_tree:", "architecture"),
    PageSpec("rankings.py", "Rankings", ":material/leaderboard:", "rankings"),
    PageSpec("finetune.py", "Fine-tune", ":material/tune:", "finetune"),
    PageSpec("report.py", "Report", ":material/description:", "report"),
    PageSpec("search.py", "Search", ":material/travel_explore:", "search"),
]


def page(url_path: str) -> PageSpec:
    for p in PAGES:
        if p.url_path == url_path:
            return p
    raise KeyError(f"no page {url_path!r}; pages: {', '.join(p.url_path for p in PAGES)}")
