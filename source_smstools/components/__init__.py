"""What the manifest cannot say in YAML, or would say at a high price per record, one module per
concern; the manifest names each class by its module (`source_smstools.components.records.MessageFields`).

- records: the fields added to each message (`phone`, `id`, `datetime_utc`)
- state: the conversation stream's saved state, checked and kept per phone
- discovery: the phones found in the account (contacts, inbox, message log)
- sources: the inbox and the message log read for change detection (pages, order, positions)
- changes: which phones an incremental sync reads, one function per rule
- coverage: what the records tell change detection (lists that leave messages out, statuses not final)
- errors: the error handlers (messages that say where, endpoints an account may not use)
- pages: the answers parsed once, their records and their paging
"""
