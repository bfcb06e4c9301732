"""Backfill missing post slugs: `python -m flask_blog.scripts.backfill`."""

import datetime as dt
import os
import re

import click
import psycopg2


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80]


@click.command()
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
@click.option("--dry-run", is_flag=True, help="Roll back instead of committing.")
def backfill(since: dt.datetime, dry_run: bool) -> None:
    """Fill posts.slug for posts published on or after SINCE."""
    conn = psycopg2.connect(os.environ["DATABASE_URL"])  # ok: CLI runs once
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id, title FROM posts"
                " WHERE slug IS NULL AND published_at >= %s",
                (since,),
            )
            rows = cur.fetchall()
            for post_id, title in rows:
                cur.execute(
                    "UPDATE posts SET slug = %s WHERE id = %s",
                    (slugify(title), post_id),
                )
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    finally:
        conn.close()
    verb = "would update" if dry_run else "updated"
    click.echo(f"{verb} {len(rows)} posts")


if __name__ == "__main__":
    backfill()
