"""Telegram sandbox: a Bot API server for channels (``server``) and its Sandbox (``sandbox``); the npm emulator
telegram-test-api runs beside it for the text path (``emulator``)."""
