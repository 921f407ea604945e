"""Gmail push: what `users.watch` sets up, published to the emulated Pub/Sub topic.

Gmail publishes one message per mailbox change to the watched topic whose `data` is base64 of
`{"emailAddress": ..., "historyId": ...}` (the mailbox's historyId after the change, a JSON
number on the wire though Google's guide prints it as a string) and no attributes. The
notification says only "something changed up to here": clients call `history.list` from their
cursor. A watch with `labelIds` publishes only changes touching those labels (`include`) or
not touching them (`exclude`); a lapsed watch publishes nothing, as Gmail's after 7 days.
"""

from __future__ import annotations

import json

from connector.emulator.pubsub import PubSubState
from connector.emulator.state import HistoryRecord, Mailbox, now_ms


def notification(email: str, history_id: int) -> bytes:
    return json.dumps({"emailAddress": email, "historyId": history_id}).encode()


class GmailPush:
    def __init__(self, pubsub: PubSubState) -> None:
        self.pubsub = pubsub

    def topic_known(self, topic: str) -> bool:
        return topic in self.pubsub.topics

    def changed(self, box: Mailbox, record: HistoryRecord) -> None:
        watch = box.watch
        if watch is None:
            return
        if int(watch["expiration"]) <= now_ms():
            box.watch = None
            return
        wanted = set(watch.get("labelIds") or ())
        if wanted:
            touched = wanted.intersection(record.message.label_ids) or wanted.intersection(
                record.label_ids
            )
            include = watch.get("labelFilterBehavior", "include") == "include"
            if bool(touched) != include:
                return
        topic = watch["topicName"]
        if topic in self.pubsub.topics:  # a deleted topic: Gmail's publish fails unseen
            self.pubsub.publish(topic, [(notification(box.email, record.id), {})])
