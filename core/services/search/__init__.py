"""Message search: folded words for the store's text index (`folding`), scores and snippets
(`ranking`), and the search over the caller's conversations (`messages`).

Nothing is imported here, so the send path can import `folding` without the rest.
"""
