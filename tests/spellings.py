"""The ambiguous-path corpus, shared by the access unit tests and the differential test (tests/differential).

Each spelling is read by some app or framework as /admin... (or is one character
away from it); none may be judged by a looser rule than /admin's.
"""

from __future__ import annotations

ADMIN_SPELLINGS = [
    "/admin", "/admin/", "/admin/users", "/ADMIN", "/Admin/users", "/admin%2f", "/admin%2Fusers", "/admin;x",
    "/admin;jsessionid=1/users", "/admin.", "/admin./users", "/admin%20", "/admin%09", "/admin ", "/admin\t",
    "//admin", "///admin/users", "/./admin", "/static/../admin", "/static/%2e%2e/admin", "/static/%2E%2E/admin",
    "/static/..%2fadmin", "/static/..%2Fadmin", "/static/%2e%2e%2fadmin", "/static/..;/admin",
    "/static/%252e%252e/admin", "/static\\..\\admin", "/static/..\\admin", "/about/../admin", "/about/..;/admin",
    "/static//../admin", "/%61dmin", "/static/%2e%2e/%61dmin/users", "/about%2f..%2fadmin",
]
