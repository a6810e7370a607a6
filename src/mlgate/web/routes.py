"""Every router of the dashboard and the portal, in the order the app mounts them."""

from __future__ import annotations

from fastapi import APIRouter

from mlgate.web import (
    accounts,
    login,
    models,
    portal,
    rollouts,
    sources,
    static,
    training,
    usage,
)

routers: list[APIRouter] = [
    static.router,
    login.router,
    models.router,
    rollouts.router,
    sources.router,
    training.router,
    accounts.router,
    usage.router,
    portal.router,
]
