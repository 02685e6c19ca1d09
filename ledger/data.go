package ledger

import "encoding/json"

// Transports a command can arrive by.
const (
	TransportCAD     = "cad"     // Cisco Agent Desktop HTTP action (query or form parameters)
	TransportFinesse = "finesse" // Cisco Finesse workflow HTTP request (JSON body)
	TransportHTTP    = "http"    // any other HTTP client
	TransportNATS    = "nats"    // the NATS CTI subject
)

// Param is one request parameter, kept in the order the client sent it.
type Param struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Command is the data of a TypeCommand event: one Recording Controls request
// as received, after card numbers were masked. It is appended whatever its
// outcome; the projections decide the outcome.
type Command struct {
	// Command is the path's command, lower-cased as received ("pauseurl",
	// "recordtag", "start"): aliases are resolved by the projections, so the
	// ledger shows what the client really sent.
	Command      string `json:"command"`
	SenderID     string `json:"sender_id,omitempty"`
	PeripheralID string `json:"peripheral_id,omitempty"`
	Extension    string `json:"extension,omitempty"`
	// Params holds every other parameter, in request order. For "metadata"
	// these are the metadata keys: the members of the `metadata` JSON object
	// first, then any other parameter.
	Params []Param `json:"params,omitempty"`
	// Masked lists the keys of Params whose values held a card number; the
	// stored value keeps only the first 6 and last 4 digits.
	Masked []string `json:"masked,omitempty"`
	// Invalid is set when ingest could not accept the request's input
	// (a machine reason, e.g. "invalid_input"), with Message for people.
	// The projections answer such a command "rejected" with that reason.
	Invalid string `json:"invalid,omitempty"`
	Message string `json:"message,omitempty"`

	Transport string `json:"transport"`
	Method    string `json:"method,omitempty"`
	Client    string `json:"client,omitempty"`    // remote address (IP)
	Principal string `json:"principal,omitempty"` // token name or network that authorised it; empty when open
}

// Call signal types.
const (
	SignalRinging   = "ringing"
	SignalDialing   = "dialing"
	SignalAnswered  = "answered"
	SignalHeld      = "held"
	SignalRetrieved = "retrieved"
	SignalEnded     = "ended"
)

// Call directions.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
	DirectionInternal = "internal"
)

// CallSignal is the data of a TypeCallSignal event: one CTI signal.
// At is when it happened (the client's `at`, else the time received).
type CallSignal struct {
	CallID    string `json:"call_id"`
	Extension string `json:"extension"`
	Type      string `json:"type"`
	Direction string `json:"direction,omitempty"`
	ANI       string `json:"ani,omitempty"`
	DNIS      string `json:"dnis,omitempty"`
	ACD       bool   `json:"acd,omitempty"`
	At        Time   `json:"at"`

	Transport string `json:"transport"`
	Principal string `json:"principal,omitempty"`
}

// Configuration parts a ConfigChange can set.
const (
	PartDocument = "document" // the whole document (--config FILE); Key empty
	PartSite     = "site"     // Key empty
	PartMetadata = "metadata" // Key = metadata key
	PartTeam     = "team"     // Key = team name
	PartUser     = "user"     // Key = user id
)

// Configuration change operations.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// ConfigChange is the data of a TypeConfig event. Value is the part's
// validated JSON (Site, MetadataKey, Team, User or Config), absent for a delete.
type ConfigChange struct {
	Part      string          `json:"part"`
	Key       string          `json:"key,omitempty"`
	Op        string          `json:"op"`
	Value     json.RawMessage `json:"value,omitempty"`
	Principal string          `json:"principal,omitempty"`
	Source    string          `json:"source,omitempty"` // "api", "file"
}

// How a day came to be sealed.
const (
	SealSchedule = "schedule" // the scheduler, at upload time
	SealStartup  = "startup"  // the server was down at upload time and sealed on start
	SealRequest  = "request"  // POST /v1/manifests/{day}/close
)

// DayClosed is the data of a TypeDayClosed event: the seal of Day
// (YYYY-MM-DD in the site's timezone). The manifest of Day holds the contacts
// that closed after the previous seal and up to this event.
type DayClosed struct {
	Day       string `json:"day"`
	By        string `json:"by"`
	Principal string `json:"principal,omitempty"`
}

// Timer kinds.
const (
	TimerPauseExpiry = "pause_expiry"
)

// TimerFired is the data of a TypeTimer event, appended by the server. For
// pause_expiry it names the pause (by the id of the event that opened it);
// the projections close it with ended_by "timeout" if it is still open,
// and ignore it otherwise.
type TimerFired struct {
	Timer       string `json:"timer"`
	ContactID   string `json:"contact_id,omitempty"`
	PauseOpenID string `json:"pause_open_id,omitempty"`
	Due         Time   `json:"due"`
}
