"""Loading a campaign folder into the model, and reporting every problem of every file at once."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from bot.campaign import Campaign, inspect, load, secret_problems
from bot.core.errors import ConfigError


def test_loads_the_contract_model(campaign_dir: Path):
    """The base campaign loads into accounts, posts, queues in file order, schedules and reshare config."""
    c = load(campaign_dir)
    assert isinstance(c, Campaign) and c.name == "test-campaign" and c.root == campaign_dir.resolve()
    assert list(c.accounts) == ["x-index", "mastodon-a19", "bluesky-index"]
    assert c.accounts["mastodon-a19"].credentials == {"access_token": "MASTODON_A19_TOKEN"}
    assert c.accounts["bluesky-index"].handle == "index.example.org"
    assert c.queues == {"sample-posts": ["001-why", "002-act"], "videos": ["001-supporter", "002-supporter"]}
    assert c.posts["launch"].queue is None and c.posts["002-act"].queue == "sample-posts"
    video = c.posts["001-supporter"].video
    assert video.path == campaign_dir.resolve() / "posts/media/videos/001-supporter.mp4"
    assert video.captions_path.name == "001-supporter.vtt" and video.captions_lang == "en"
    assert c.posts["001-supporter"].consent.given and c.posts["001-supporter"].consent.date == date(2022, 1, 5)
    schedule = c.schedules[0]
    assert (schedule.name, str(schedule.timezone), schedule.grace) == ("launch", "Europe/London", timedelta(hours=1))
    assert (schedule.window_start, schedule.window_end) == (date(2022, 1, 12), date(2022, 1, 13))
    assert [s.kind for s in schedule.slots] == ["at", "every", "cron"]
    assert schedule.slots[0].at == datetime(2022, 1, 12, 9, 0) and schedule.slots[1].line == 7
    assert [s.target for s in schedule.slots] == ["post:launch", "queue:videos", "queue:sample-posts"]
    assert c.reshare.track[0].hashtags == ["FreeAndreiandIrina"]
    assert c.reshare.policy.skip == {"replies", "reshares", "own", "sensitive"} and c.reshare.policy.mode == "auto"


def test_text_for_uses_variant_and_appends_link(campaign_dir: Path):
    """A platform's text is its variant (or the text), stripped, with the link on a new line once."""
    post = load(campaign_dir).posts["launch"]
    assert post.text_for("x") == (
        "Andrei and Irina have been jailed in Belarus for one year. #FreeAndreiandIrina\nhttps://example.org/petition"
    )
    assert post.text_for("mastodon").startswith("One year ago") and post.text_for("mastodon").count("https://") == 1
    linked = dataclasses.replace(post, text="Sign https://example.org/petition now")
    assert linked.text_for("bluesky") == "Sign https://example.org/petition now"


def test_outgoing_carries_media_and_alt(campaign_dir: Path):
    """``outgoing`` builds what an adapter publishes: chosen text, images with alt, video with captions."""
    c = load(campaign_dir)
    out = c.posts["launch"].outgoing("mastodon", "key-1")
    assert out.key == "key-1" and out.images[0].alt.startswith("Banner") and out.images[0].path.is_file()
    video = c.posts["001-supporter"].outgoing("bluesky", "key-2").video
    assert video.captions.name == "001-supporter.vtt" and video.alt.startswith("A press-freedom")


def test_all_problems_of_all_files_at_once(campaign_dir: Path):
    """Mistakes in three files are all reported by one load, each with its own file and line."""
    (campaign_dir / "posts/launch.yaml").write_text("txt: hello\n")
    (campaign_dir / "schedules/launch.yaml").write_text(
        (campaign_dir / "schedules/launch.yaml").read_text().replace("Europe/London", "Mars/Olympus")
    )
    (campaign_dir / "config/reshare.yaml").write_text("track: {}\n")
    with pytest.raises(ConfigError) as info:
        load(campaign_dir)
    assert info.value.problems == [
        "config/reshare.yaml:1: track: got {} (expected a list)",
        "posts/launch.yaml:1: text: required key is missing",
        "posts/launch.yaml:1: unknown key 'txt' (did you mean 'text'?)",
        "schedules/launch.yaml:1: timezone: unknown time zone 'Mars/Olympus' (expected a name like Europe/London)",
    ]


def test_load_ignores_warnings(campaign_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Missing credential variables are warnings for check, not errors for load."""
    monkeypatch.delenv("MASTODON_A19_TOKEN", raising=False)
    assert load(campaign_dir).accounts["mastodon-a19"]
    result = inspect(campaign_dir)
    assert result.errors == []
    assert any("MASTODON_A19_TOKEN is not set" in w for w in result.warnings)


def test_secret_problems_for_run(campaign_dir: Path, credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """``secret_problems`` lists each unset variable by account and role, for ``bot run`` to refuse."""
    c = load(campaign_dir)
    assert secret_problems(c) == []
    monkeypatch.delenv("BLUESKY_INDEX_APP_PASSWORD")
    assert secret_problems(c) == [
        "config/accounts.yaml:11: accounts.bluesky-index.credentials.app_password: "
        "environment variable BLUESKY_INDEX_APP_PASSWORD is not set"
    ]


def test_nested_queue_folder(campaign_dir: Path):
    """A post in posts/a/b/ belongs to queue 'a/b', ordered by file name."""
    folder = campaign_dir / "posts/more/later"
    folder.mkdir(parents=True)
    for name in ("b.yaml", "a.yaml"):
        (folder / name).write_text("text: Free them. #FreeAndreiandIrina\n")
    assert load(campaign_dir).queues["more/later"] == ["a", "b"]


def test_problems_never_echo_a_pasted_secret(campaign_dir: Path):
    """A secret pasted where a variable name belongs is refused without repeating it."""
    path = campaign_dir / "config/accounts.yaml"
    path.write_text(
        path.read_text().replace("{access_token: MASTODON_A19_TOKEN}", "{access_token: 'zX9-very secret/token'}")
    )
    with pytest.raises(ConfigError) as info:
        load(campaign_dir)
    assert "zX9" not in str(info.value) and "not the secret itself" in str(info.value)


def test_posts_share_their_folder_and_media_list_and_keep_their_paths(campaign_dir: Path):
    """Posts of one folder share one folder string and posts with the same media one list; each path stays its file's."""
    folder = campaign_dir / "posts/more"
    folder.mkdir()
    banner = "media:\n  - file: media/banner-1.png\n    alt: Banner with the words Free Andrei and Irina\n"
    for name in ("a.yaml", "b.yml", "c.yaml"):
        (folder / name).write_text(f"text: Free them. #FreeAndreiandIrina\n{banner}")
    posts = load(campaign_dir).posts
    a, b, c = posts["a"], posts["b"], posts["c"]
    assert a.folder is b.folder is c.folder
    assert a.media is b.media is c.media and a.media == posts["launch"].media
    root = campaign_dir.resolve()
    assert [p.path for p in (a, b, c)] == [
        root / "posts/more/a.yaml",
        root / "posts/more/b.yml",
        root / "posts/more/c.yaml",
    ]
    assert posts["001-why"].path == root / "posts/sample-posts/001-why.yaml"


def test_loaded_campaign_and_its_parts_are_frozen(campaign_dir: Path):
    """Nothing can change a loaded campaign in place: a reload builds a new one."""
    campaign = load(campaign_dir)
    parts = [
        campaign,
        campaign.accounts["x-index"],
        campaign.schedules[0],
        campaign.schedules[0].slots[0],
        campaign.reshare,
        campaign.reshare.policy,
        campaign.reshare.track[0],
        campaign.posts["launch"],
    ]
    for part in parts:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, dataclasses.fields(part)[0].name, None)


def test_post_keeps_the_model_contract(tmp_path: Path):
    """Post is built by keyword with a Path, gives a Path back, refuses changes, and defaults its parts."""
    from bot.core.model import Post

    post = Post(id="a", queue="q", path=tmp_path / "a.yaml", text="Free them https://example.org")
    assert post.path == tmp_path / "a.yaml" and isinstance(post.path, Path)
    assert (post.variants, post.media, post.video, post.link) == ({}, [], None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        post.text = "x"  # type: ignore[misc]
    assert dataclasses.replace(post, text="b").path == post.path


def test_post_keeps_its_rare_parts_through_replace_and_pickle(tmp_path: Path):
    """A post's less common parts (file name, variants, video, supporter, consent, reshare, translations) are kept
    by dataclasses.replace and by pickling (the loading child's way back), and a post without them still has none."""
    import pickle

    from bot.core.model import Consent, Post, Supporter, Translation, Video

    video = Video(file="v.mp4", path=tmp_path / "v.mp4", alt="A march")
    full = Post(
        id="a",
        path=tmp_path / "named.yaml",
        text="Free them",
        variants={"x": "Free them now"},
        video=video,
        supporter=Supporter(name="Ana"),
        consent=Consent(given=True),
        reshare_of="urn:li:share:1",
        language="en",
        translations={"ru": Translation(text="Свободу")},
    )
    changed = dataclasses.replace(full, text="b", supporter=Supporter(name="Ben"))
    assert (changed.text, changed.supporter, changed.video, changed.path) == (
        "b",
        Supporter(name="Ben"),
        video,
        tmp_path / "named.yaml",
    )
    assert (changed.variants, changed.consent, changed.reshare_of) == (full.variants, full.consent, full.reshare_of)
    assert changed.translations == full.translations and changed.file_name == "named.yaml"
    assert pickle.loads(pickle.dumps(full, protocol=pickle.HIGHEST_PROTOCOL)) == full
    plain = Post(id="b", path=tmp_path / "b.yaml", text="Free them")
    assert pickle.loads(pickle.dumps(plain)) == plain != dataclasses.replace(plain, video=video)
    assert (plain.file_name, plain.variants, plain.supporter, plain.consent, plain.reshare_of) == (
        None,
        {},
        None,
        None,
        None,
    )
    assert plain.translations == {}
