package ledger

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// Events already in a ledger are read by every later build: the data as
// earlier builds wrote it decodes into the same fields, and the words it
// holds (signal types, directions, parts, operations, seal causes, timer
// kinds, transports) are the ones the constants name.
func TestStoredDataReadsAsWritten(t *testing.T) {
	at := T(time.Date(2026, 11, 23, 14, 2, 11, 120e6, time.UTC))
	for _, c := range []struct {
		stored string
		into   any
		want   any
	}{
		{`{"command":"pauseurl","sender_id":"jdoe","peripheral_id":"5001","extension":"3420","params":[{"k":"reason","v":"card"}],"masked":["reason"],"invalid":"invalid_input","message":"m","transport":"cad","method":"GET","client":"10.1.2.3","principal":"desk"}`,
			&Command{}, &Command{Command: "pauseurl", SenderID: "jdoe", PeripheralID: "5001", Extension: "3420", Params: []Param{{Key: "reason", Value: "card"}},
				Masked: []string{"reason"}, Invalid: ReasonInvalidInput, Message: "m", Transport: TransportCAD, Method: "GET", Client: "10.1.2.3", Principal: "desk"}},
		{`{"call_id":"c-77","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","dnis":"8001","acd":true,"at":"2026-11-23T14:02:11.120Z","transport":"http","principal":"cti"}`,
			&CallSignal{}, &CallSignal{CallID: "c-77", Extension: "3420", Type: SignalRinging, Direction: DirectionInbound, ANI: "+13125550100", DNIS: "8001",
				ACD: true, At: at, Transport: TransportHTTP, Principal: "cti"}},
		{`{"call_id":"c-78","extension":"3421","type":"dialing","direction":"outbound","at":"2026-11-23T14:02:11.120Z","transport":"nats"}`,
			&CallSignal{}, &CallSignal{CallID: "c-78", Extension: "3421", Type: SignalDialing, Direction: DirectionOutbound, At: at, Transport: TransportNATS}},
		{`{"part":"user","key":"jdoe","op":"delete","principal":"admin","source":"api"}`,
			&ConfigChange{}, &ConfigChange{Part: PartUser, Key: "jdoe", Op: OpDelete, Principal: "admin", Source: "api"}},
		{`{"part":"team","key":"sales","op":"put","value":{"archive":true}}`,
			&ConfigChange{}, &ConfigChange{Part: PartTeam, Key: "sales", Op: OpPut, Value: json.RawMessage(`{"archive":true}`)}},
		{`{"day":"2026-11-23","by":"request","principal":"admin"}`,
			&DayClosed{}, &DayClosed{Day: "2026-11-23", By: SealRequest, Principal: "admin"}},
		{`{"timer":"pause_expiry","contact_id":"01JD","pause_open_id":"01JE","due":"2026-11-23T14:02:11.120Z"}`,
			&TimerFired{}, &TimerFired{Timer: TimerPauseExpiry, ContactID: "01JD", PauseOpenID: "01JE", Due: at}},
	} {
		if err := json.Unmarshal([]byte(c.stored), c.into); err != nil || !reflect.DeepEqual(c.into, c.want) {
			t.Errorf("%s\nread as %+v (%v)\nwant    %+v", c.stored, c.into, err, c.want)
		}
	}
	// A delete's value is absent, as the events before it were written.
	if b, err := EncodeData(ConfigChange{Part: PartUser, Key: "jdoe", Op: OpDelete}); err != nil || string(b) != `{"part":"user","key":"jdoe","op":"delete"}` {
		t.Errorf("a delete: %s %v", b, err)
	}
	for got, want := range map[string]string{
		SignalAnswered: "answered", SignalHeld: "held", SignalRetrieved: "retrieved", SignalEnded: "ended",
		DirectionInternal: "internal", TransportFinesse: "finesse", PartDocument: "document", PartSite: "site",
		PartMetadata: "metadata", SealSchedule: "schedule", SealStartup: "startup",
	} {
		if got != want {
			t.Errorf("%q, stored as %q", got, want)
		}
	}
}
