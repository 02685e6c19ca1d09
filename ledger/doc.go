/*
Package ledger is recledger's event log: every Recording Controls command
and call signal is appended, durably and in order, to one hash-chained log
kept in a bbolt file and mirrored to NATS JetStream. Everything else (agent
state, contacts, pause intervals, upload manifests) is derived from it by
the projections, which replay the events; nothing here interprets them.

The package also holds the shared vocabulary of recledger: the event data
structs (data.go), the configuration document (config.go), the read-side
shapes the API returns and the words they use — command names and aliases,
outcomes, reason words, reason codes, states (views.go) — and the sentinel
errors (errors.go).

# Basics

An Event is what a caller appends: a Type and its data. The Store turns it
into an Envelope, the stored form: seq, id, time, type, version, data, prev
and hash, encoded as compact JSON with a fixed field order (Envelope.Seal).
The same bytes are the value in bbolt (bucket "events", key the 8-byte
big-endian seq) and the payload in JetStream, and Decode checks them.

Seq is gapless from 1 and is the order of the ledger. ID is a ULID, strictly
increasing in seq order, also across restarts and when the clock steps
backwards (its time is then held at the last ID's). Time is the ID's
millisecond timestamp, so ledger time never decreases. Hash is SHA-256 over
the previous event's hash (prev, raw bytes; none for seq 1) and the
envelope's body without prev and hash: changing any stored byte, dropping
or reordering an event breaks the chain from that point on. The body is
the stored bytes up to `,"prev":`, closed with `}` (GET /v1/events
serves every event's stored bytes as they are). A checker that encodes
the body again must write it as encoding/json does: no spaces, and `<`,
`>`, `&`, U+2028 and U+2029 in strings escaped as \u003c, \u003e,
\u0026, \u2028 and \u2029.

Open starts one writer goroutine; Close stops it. Append hands its events
to the writer, which takes every pending request, writes them all in one
bbolt read-write transaction and commits it (fsync) — one fsync for many
concurrent callers — then calls the Subscribe hooks with the batch in seq
order, then releases the callers with their envelopes. The live
projections and the JetStream outbox subscribe; register hooks before the
first Append. Import appends already-sealed envelopes verbatim through the
same writer (restore from JetStream).

Scan and ScanRaw read the events after a seq, up to the head at the call,
in bounded read transactions; Get reads one. Verify recomputes the chain
from seq 1 and reports the first bad seq. SaveCheckpoint and
LoadCheckpoint keep the newest projection state per checkpoint version
(bucket "checkpoints": version → 8-byte seq + state) so a restart replays
only the tail; a state larger than 1 MiB goes in parts of that size,
each in a transaction of its own (bucket "checkpoint_parts"), before the
checkpoint naming them. SaveCheckpoint also puts, first, in transactions of at
most 1 MiB, the last with the checkpoint, the sections the state names (bucket "sections": "VERSION/..." key → bytes,
written once, never changed): the sealed history the projections keep out
of the heap and read back with Section. A section the saved state no
longer names (Section.Drop) is deleted in the checkpoint's own
transaction. The first checkpoint of a version deletes the checkpoints
and sections of the others.

The Outbox publishes committed envelopes to the RECLEDGER_EVENTS stream in
seq order; ScanJetStream and CompareJetStream read the mirror back and
compare it with the store. Their files document the details.

# Caveats

Ordering: seq is the only order. IDs sort the same way, but an event's time
is when the ledger appended it, not when the client sent it (the client's
times, when any, are in the data); with a clock stepped back, consecutive
events share the held time.

Idempotency: Append is not idempotent. A caller that retries after an
error or a timeout may append a second event for the same request; the
events are what was received, duplicates included, and the projections
decide what they mean. Cancelling Append's context only withdraws a
request the writer has not taken yet; once taken, the caller waits for the
true outcome. Publishing to JetStream is exactly-once: every message
carries Nats-Msg-Id = the envelope's ID, and the outbox resumes from the
stream's tail after a restart.

Versions: every event carries the version it was written under
(CurrentVersion), and the projections fold it with that version's rules.
A rule changed in a later build applies to the events appended after the
upgrade, never to the history: a sealed manifest, and the answer a client
was given, stay what they were. A build refuses events of a later version
than its own (ErrUnknownVersion), so a ledger cannot be served again by
an older build once a newer one has appended to it.

What is never stored: card numbers in clear, as far as ingest recognises
them (it masks them in commands to the first 6 and last 4 digits before
the event is built and lists the masked keys, and refuses configuration
that holds one; docs/rules-decisions.md, Metadata, names the forms
it leaves in clear, such as a number written as a thousands-grouped
amount), bearer tokens (a
configured token sent as a command's parameter is stored as
"[token NAME redacted]"), and
request bodies verbatim — only the parsed parameters. Call signals are
not masked: their ids and numbers are identities (docs/rules-decisions.md).

Durability: the bbolt file is the durable copy; an Append returns only
after its transaction is fsynced. JetStream is a mirror that may lag, and
can rebuild a data directory (Import). bbolt locks its file: a second
process cannot open it for writing, and a read-only Open (Options.ReadOnly)
waits only briefly for a live server's lock and then fails with
ErrUnavailable, so tools that run beside a server read through its API or
JetStream instead. Backup copies the file consistently while appends go
on (one read transaction); the writing store maps its file 8 GiB ahead
(initialMmap) so that such a long read holds up no append's remap. A full disk fails appends until it has room again; a
JetStream stream whose write failed stays failed until JetStream opens it
anew, which the Mender does for the embedded server (nats_mend.go).

Who writes the mirror: the embedded NATS server (StartEmbedded) lets only
this process's own connections (Embedded.Own) publish into the streams or
change them; other clients get what a NATSAuthorizer grants (call signals,
reading). JetStream itself stores on a stream whatever it is told to send
on a subject the stream takes, its answers to a client's API requests
included (the client names the reply subject), which NATS permissions
cannot see: so the embedded server's streams take messages under a
prefix that is a secret of each start (Embedded.Capture,
EnsureStreamsCapturing, Outbox.PublishUnder) and store them under the
public subjects, and readers may not read the streams' configuration.
The clients themselves live in a NATS account of their own
(ClientsAccount), which reaches the streams only through the services the
global account exports to it: the answers to a client's requests come
back into its own account, where no stream and no JetStream API is, so
no reply subject a client names can make JetStream write, purge or
delete anything. Their direct gets go through a relay (nats_relay.go)
that caps each and takes them one at a time, each requester's in turn,
so that no reader can have JetStream queue more than the server can
hold, nor keep the others waiting; it answers only on readers' inboxes.
On streams taking the public subjects (an external NATS), a message that
is not an event or a manifest may still arrive: the readers of the
events stream step over what does not decode (ScanJetStreamNoting counts
it), the outbox deletes what follows its last event, and a manifest
subject's messages without the day's message id are deleted before the
manifest is published (jsforeign.go; docs/clients.md). The data dir records its site (ClaimSite), since the
site names the subjects its events are mirrored under.

Time zones: a site's local dates (a contact's day, its retention date, the
upload time) are computed with the zone database embedded in this package
(LoadZone, Go's zoneinfo.zip), never the host's, so that every machine
replaying a ledger dates it alike; a newer database is a change of rules.

Stored values are never rewritten: Verify, not the store, is the defence
against tampering, and a chain whose tail does not decode makes Open refuse
appends (ErrCorrupt) while still allowing reads and Verify.
*/
package ledger
