"""Every router of the dashboard and the portal, in the order the app mounts them."""

from __future__ import annotations

from fastapi import APIRouter

from mlgate.web import (
    accounts,
    cards,
    importing,
    login,
    models,
    portal,
    reports,
    rollouts,
    sources,
    sql_export,
    sso,
    static,
    training,
    usage,
)

routers: list[APIRouter] = [
    static.router,
    login.router,
    sso.router,
    models.router,
    reports.router,
    cards.router,
    sql_export.router,
    rollouts.router,
    sources.router,
    training.router,
    importing.router,
    accounts.router,
    usage.router,
    portal.router,
]
