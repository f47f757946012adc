"""Accessibility checks in the browser: axe-core's WCAG 2.2 AA rules, sideways scrolling, control contrast.

axe-core comes from npm (``make browser-deps`` installs the version pinned by
tests/browser/package-lock.json into tests/browser/node_modules). It is injected
as a script tag, which every page's Content-Security-Policy forbids: the
contexts that run it are opened with ``bypass_csp=True`` (test_pages.py checks
the pages under their real policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Page

AXE_JS = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING_IMPACTS = ("serious", "critical")
SIZES = {"desktop": (1280, 800), "phone": (375, 667)}
Scheme = Literal["light", "dark"]
SCHEMES: tuple[Scheme, ...] = ("light", "dark")
NARROWEST = (320, 568)  # the smallest phone screen WCAG's reflow criterion (1.4.10) asks for

AXE_RUN_JS = """async ([tags, impacts]) => {
    const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return result.violations.filter(v => impacts.includes(v.impact)).map(v =>
        `${v.impact} ${v.id} (${v.help}): ${v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | ')}`);
}"""
WIDTH_JS = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def require_axe() -> Path:
    """The axe-core script; missing means ``make browser-deps`` did not run, which is an error, never a skip."""
    if not AXE_JS.is_file():
        pytest.fail(f"axe-core is not installed at {AXE_JS}: run `make browser-deps` "
                    "(in CI a missing tool is an error, never a skip)", pytrace=False)
    return AXE_JS


def axe_violations(page: Page) -> list[str]:
    """The serious and critical WCAG 2.2 AA violations axe finds on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=require_axe())
    found: list[str] = page.evaluate(AXE_RUN_JS, [WCAG_TAGS, list(BLOCKING_IMPACTS)])
    return found


def sideways_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no sideways scrolling)."""
    scroll_width, inner_width = page.evaluate(WIDTH_JS)
    return max(0, int(scroll_width) - int(inner_width))


def check_page(page: Page, name: str, screenshot_dir: Path) -> list[str]:
    """axe at both sizes in both colour schemes, and the width at 320 px; screenshots of each; the problems found.

    The page stays loaded: resizing and switching the colour scheme re-lay out the same
    document, so pages reached by a POST are checked as they are.
    """
    problems: list[str] = []
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=screenshot_dir / f"{name}-{size}-{scheme}.png", full_page=True)
            problems += [f"{name} {size} {scheme}: {v}" for v in axe_violations(page)]
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": NARROWEST[0], "height": NARROWEST[1]})
    page.screenshot(path=screenshot_dir / f"{name}-320.png", full_page=True)
    overflow = sideways_overflow(page)
    if overflow:
        problems.append(f"{name}: {overflow} px wider than a {NARROWEST[0]} px screen (scrolls sideways)")
    return problems


BORDER_CONTRAST_JS = """(selector) => {
    const control = document.querySelector(selector);
    let parent = control.parentElement, background = 'rgba(0, 0, 0, 0)';
    while (parent && (background === 'rgba(0, 0, 0, 0)' || background === 'transparent')) {
        background = getComputedStyle(parent).backgroundColor;
        parent = parent.parentElement;
    }
    return [getComputedStyle(control).borderTopColor, background];
}"""


def _channels(css_color: str) -> tuple[float, float, float]:
    """``rgb(r, g, b)`` (as getComputedStyle gives it) as three 0..255 numbers."""
    inner = css_color[css_color.index("(") + 1:css_color.index(")")]
    red, green, blue = (float(part) for part in inner.replace("/", ",").split(",")[:3])
    return red, green, blue


def _luminance(css_color: str) -> float:
    """Relative luminance (WCAG 2.2, definition of relative luminance)."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4
              for c in _channels(css_color)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two CSS colours, 1 to 21."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def border_contrast(page: Page, selector: str) -> float:
    """The contrast of a control's border against the first opaque background behind it (WCAG 1.4.11 asks 3:1)."""
    result: Any = page.evaluate(BORDER_CONTRAST_JS, selector)
    border, background = result
    return contrast(border, background)
