"""The reference AT Protocol servers from npm (PLC, PDS, AppView) and a video service beside them."""

from sandboxes.bluesky.sandbox import BlueskySandbox

__all__ = ["BlueskySandbox"]
