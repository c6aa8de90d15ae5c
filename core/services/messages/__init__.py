"""Messages, the store side of chat (core.services.chat is the use case that plans the events).

- `send`: batches stored in one insert, idempotent, numbered by gap-free `seq` claims;
- `edit`: edits and deletes (tombstones);
- `history`: pages of stored messages and the cursor positions the caller keeps;
- `receipts`: read watermarks, unread counts;
- `views`: the contract's message view (with the preview of a quoted message); `body`: what a body may be.
"""

from core.services.messages.body import validate_body
from core.services.messages.edit import delete_message, edit_message, get_message_for_member
from core.services.messages.history import CursorPositions, history, last_message
from core.services.messages.receipts import Receipt, mark_read, read_states, unread_count
from core.services.messages.send import SendCommand, SendResult, send_many
from core.services.messages.views import StoredMessage, message_out, reply_previews, stored_message_out

__all__ = [
    "CursorPositions",
    "Receipt",
    "SendCommand",
    "SendResult",
    "StoredMessage",
    "delete_message",
    "edit_message",
    "get_message_for_member",
    "history",
    "last_message",
    "mark_read",
    "message_out",
    "read_states",
    "reply_previews",
    "send_many",
    "stored_message_out",
    "unread_count",
    "validate_body",
]
