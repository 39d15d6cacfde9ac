"""Telegram sandbox: our Bot API server for channels (sandboxes.telegram.server) on 127.0.0.1.

Why not telegram-test-api (npm, 4.2.1), which we evaluated: it serves getMe (one fixed bot), sendMessage,
getUpdates, editMessageText, deleteMessage and webhooks for *private* chats only; it has no channels,
no getChat/getChatMember, no sendPhoto/sendVideo/sendMediaGroup (it parses no multipart bodies), no flood
control, and answers errors as ``{"message"}`` with HTTP 500 rather than the Bot API's envelope. We still run
the adapter's text path against it (tests/platforms/test_telegram_emulator.py): a server someone else wrote.

Accounts are channels. One bot (the "campaign bot") is an administrator with ``can_post_messages`` in every
channel the sandbox creates, and every account's credential variable holds its token: one bot posting to
many channels, as a campaign sets it up, so the flood limits of the one token apply across them.
"""

from __future__ import annotations

import json
import threading
from typing import Any, ClassVar

from sandboxes.base import Draft, Sandbox, SandboxAccount, ServerPost, env_name, shut
from sandboxes.telegram.server import TelegramHTTPServer, TelegramState


class TelegramSandbox(Sandbox):
    platform: ClassVar[str] = "telegram"

    def __init__(self, *, latency: float = 0.0, workdir: str | None = None, rate_limits: bool = True) -> None:
        super().__init__(latency=latency, workdir=workdir)
        self.state = TelegramState()
        self.state.rate_limits = rate_limits
        self._rate_limits = rate_limits
        self.bot = self.state.new_bot("campaign_bot")
        self._server: TelegramHTTPServer | None = None

    def start(self) -> None:
        # Our own server class (not serve_loopback's): a deep listen backlog for fan-outs, quiet hang-ups.
        self._server = TelegramHTTPServer(self.state, self.latency)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="telegram-sandbox", daemon=True).start()

    def stop(self) -> None:
        shut(self._server)
        self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "sandbox not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ---- accounts: channels ----

    def create_account(self, name: str, *, display_name: str | None = None) -> SandboxAccount:
        """A channel ``@name`` where the campaign bot is an administrator allowed to post."""
        username = name.lower()
        channel = self.state.new_channel(username, display_name or name)
        channel.admins[self.bot.id] = {"can_post_messages": True, "can_edit_messages": True}
        var = env_name("telegram", name, "bot_token")
        entry = {
            "platform": "telegram",
            "base_url": self.base_url,
            "handle": f"@{username}",
            "credentials": {"bot_token": var},
        }
        return SandboxAccount(id=name, handle=f"@{username}", entry=entry, env={var: self.bot.token})

    def set_rights(self, account: SandboxAccount, *, admin: bool = True, can_post: bool = True) -> None:
        """What the campaign bot may do in ``account``'s channel (a member without rights, or an admin who cannot post)."""
        channel = self.state.channel(account.handle)
        with self.state.lock:
            channel.admins.pop(self.bot.id, None)
            channel.members.discard(self.bot.id)
            if admin:
                channel.admins[self.bot.id] = {"can_post_messages": can_post, "can_edit_messages": True}
            else:
                channel.members.add(self.bot.id)

    def other_bot(self) -> str:
        """The token of a bot that is in no channel (for 'not an administrator' tests)."""
        return self.state.new_bot("stranger_bot").token

    def lift_limits(self, account: SandboxAccount | None = None) -> None:
        """No flood control (kill tests publish hundreds of posts within minutes)."""
        self.state.rate_limits = False

    def set_flood_limits(self, per_bot: tuple[int, float], per_chat: tuple[int, float]) -> None:
        self.state.per_bot, self.state.per_chat = per_bot, per_chat

    def _post_as(self, account: SandboxAccount, draft: Draft) -> str:
        """A post by the channel's own staff (not through the bot)."""
        channel = self.state.channel(account.handle)
        made = self.state.post(channel, [{"text": draft.text}], bot=None)[0]
        return f"{channel.id}/{made['message_id']}"

    # ---- assertions ----

    def messages(self, account: SandboxAccount | None = None) -> list[dict[str, Any]]:
        """Every message as the server stored it (an album is several), oldest first."""
        with self.state.lock:
            channels = [self.state.channel(account.handle)] if account else list(self.state.channels.values())
            return [dict(m) for c in channels for m in c.messages]

    def posts(self, account: SandboxAccount | None = None) -> list[ServerPost]:
        """Posts as readers see them: an album is one post (its first message's id), its caption on the first item."""
        posts: list[ServerPost] = []
        groups: dict[str, int] = {}
        for m in self.messages(account):
            chat = m["chat"]
            media = []
            if "photo" in m:
                media = [{"kind": "image", "alt": "", "bytes": m["photo"][-1]["file_size"]}]
            elif "video" in m:
                media = [{"kind": "video", "alt": "", "bytes": m["video"]["file_size"]}]
            group = m.get("media_group_id")
            if group and group in groups:
                first = posts[groups[group]]
                first.media.extend(media)
                if m.get("caption") and not first.text:
                    posts[groups[group]] = ServerPost(
                        first.remote_id, first.author, m["caption"], first.url, first.media
                    )
                continue
            remote_id = f"{chat['id']}/{m['message_id']}"
            url = f"https://t.me/{chat['username']}/{m['message_id']}"
            posts.append(ServerPost(remote_id, f"@{chat['username']}", m.get("text", m.get("caption", "")), url, media))
            if group:
                groups[group] = len(posts) - 1
        return posts

    def fail_next(
        self, fault: str, *, count: int = 1, retry_after: float | None = None, path: str | None = None
    ) -> None:
        """The next ``count`` Bot API calls (whose method contains ``path``) fail with ``fault``.

        "timeout" stores the message and answers late (the client has given up by then).
        """
        assert self._server is not None
        self._server.faults.add(fault, count=count, retry_after=retry_after, path=path)

    def fail_with_delay(self, delay: float, *, path: str | None = None) -> None:
        """A "timeout" fault whose answer comes ``delay`` seconds late (the message is stored at once)."""
        assert self._server is not None
        self._server.faults.add("timeout", path=path, delay=delay)

    def restore_defaults(self) -> None:
        assert self._server is not None
        self._server.faults.clear()
        self.state.rate_limits = self._rate_limits
        self.state.per_bot, self.state.per_chat = (30, 1.0), (20, 60.0)

    def requests(self) -> list[dict[str, Any]]:
        assert self._server is not None
        with self._server.log_lock:
            return [dict(e) for e in self._server.log]

    def describe(self) -> str:
        return json.dumps({"base_url": self.base_url, "bot": self.bot.username})
