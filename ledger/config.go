package ledger

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Config is the whole configuration document (API.md §4). Maps are encoded
// with sorted keys, so the same document always gives the same bytes.
type Config struct {
	Site     Site                   `json:"site"`
	Metadata map[string]MetadataKey `json:"metadata"`
	Teams    map[string]Team        `json:"teams"`
	Users    map[string]User        `json:"users"`
}

// Bounds of the numbers a configuration holds. Larger values were once
// taken and overflowed: a max_pause_seconds over 2^63 ns ended every pause
// as it opened, and a retention of 2^31 days gave dates past year 9999 or
// before the contact's own day.
const (
	// MaxPauseSecondsLimit is the largest max_pause_seconds: a day. A
	// pause is not expected to outlast the day it is filed under.
	MaxPauseSecondsLimit = 86_400
	// MaxRetentionDays is the largest retention_days and
	// tagged_retention_days: about a hundred years.
	MaxRetentionDays = 36_500
)

// Site holds the site-wide settings.
type Site struct {
	UploadTime      string `json:"upload_time"`       // "HH:MM", default "23:00"
	Timezone        string `json:"timezone"`          // IANA name, default "UTC"
	MaxPauseSeconds int    `json:"max_pause_seconds"` // 0 = no auto-resume
	ServerHost      string `json:"server_host"`       // returned by `config` for server recording
}

// Metadata key types.
const (
	MetaText   = "text"
	MetaNumber = "number"
	MetaDate   = "date"
)

// MaxMetadataKeys is the vendor's limit on defined keys, and on keys per contact.
const MaxMetadataKeys = 10

// MetadataKey defines one metadata key.
type MetadataKey struct {
	Type string `json:"type"`
}

// Classifier is one workflow rule; a closed contact meets the workflow
// criteria when one matches. Percent samples: keep when
// fnv32a(call_id) mod 100 < Percent.
type Classifier struct {
	Direction     string `json:"direction"`      // inbound, outbound, internal, or "" / "any"
	NumberPattern string `json:"number_pattern"` // pattern with * wildcards on the other party
	Percent       int    `json:"percent"`        // 0..100
}

// Team is a team's workflow.
type Team struct {
	Archive             bool         `json:"archive"`
	Inclusion           []string     `json:"inclusion"` // extension patterns; empty = every associated extension
	Exclusion           []string     `json:"exclusion"` // other-party number patterns never recorded automatically
	Classifiers         []Classifier `json:"classifiers"`
	RetentionDays       int          `json:"retention_days"`
	TaggedRetentionDays int          `json:"tagged_retention_days"`
}

// Recording types.
const (
	RecDesktop = "desktop"
	RecServer  = "server"
	RecNetwork = "network"
	RecGateway = "gateway"
)

// User is one Quality Management user (agent).
type User struct {
	Name         string `json:"name"`
	Team         string `json:"team"`
	Recording    string `json:"recording"`
	Extension    string `json:"extension,omitempty"`
	PeripheralID string `json:"peripheral_id,omitempty"`
}

// IsGateway reports whether the user's recording type is Gateway Recording.
func (u User) IsGateway() bool { return u.Recording == RecGateway }

// FieldError is an ErrInvalid naming the field at fault (a JSON path such
// as "teams.sales.classifiers[0].percent").
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, a...)}
}

var (
	hhmm      = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	nameChars = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)
	pattern   = regexp.MustCompile(`^[0-9+*#]{1,32}$`)
)

// Normalize fills defaults in place (upload time, timezone, empty maps).
func (c *Config) Normalize() {
	c.Site.Normalize()
	if c.Metadata == nil {
		c.Metadata = map[string]MetadataKey{}
	}
	if c.Teams == nil {
		c.Teams = map[string]Team{}
	}
	if c.Users == nil {
		c.Users = map[string]User{}
	}
	for k, t := range c.Teams {
		t.Normalize()
		c.Teams[k] = t
	}
}

// Normalize fills the site's defaults.
func (s *Site) Normalize() {
	if s.UploadTime == "" {
		s.UploadTime = "23:00"
	}
	if s.Timezone == "" {
		s.Timezone = "UTC"
	}
}

// Normalize makes nil lists empty, so encodings are stable.
func (t *Team) Normalize() {
	if t.Inclusion == nil {
		t.Inclusion = []string{}
	}
	if t.Exclusion == nil {
		t.Exclusion = []string{}
	}
	if t.Classifiers == nil {
		t.Classifiers = []Classifier{}
	}
}

// Validate checks the whole document; the error is a *FieldError.
func (c *Config) Validate() error {
	if err := c.Site.Validate("site"); err != nil {
		return err
	}
	if len(c.Metadata) > MaxMetadataKeys {
		return fieldErr("metadata", "at most %d metadata keys may be defined, got %d", MaxMetadataKeys, len(c.Metadata))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Metadata)) {
		if err := ValidateName("metadata."+k, k); err != nil {
			return err
		}
		if err := c.Metadata[k].Validate("metadata." + k); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Teams)) {
		if err := ValidateName("teams."+k, k); err != nil {
			return err
		}
		if err := c.Teams[k].Validate("teams." + k); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Users)) {
		if err := ValidateUserID("users."+k, k); err != nil {
			return err
		}
		if err := c.Users[k].Validate("users." + k); err != nil {
			return err
		}
	}
	return nil
}

// CheckReferences checks what the parts of a document say of each other:
// every user's team is defined. The API and --config refuse a document
// that fails it. The projections still fold one (a ledger written before
// the check), giving such a user the zero workflow: recorded, nothing
// saved, which is why a typo in a team must not get that far.
func (c *Config) CheckReferences() error {
	for _, k := range slices.Sorted(maps.Keys(c.Users)) {
		if _, ok := c.Teams[c.Users[k].Team]; !ok {
			return fieldErr("users."+k+".team", "team %q is not defined: a user of no team is recorded and nothing of it is saved", c.Users[k].Team)
		}
	}
	return nil
}

// ValidateName checks a map key (user id, team, metadata key).
func ValidateName(field, name string) error {
	if !nameChars.MatchString(name) {
		return fieldErr(field, "name %q must be 1-64 letters, digits or _ . @ -", name)
	}
	return nil
}

// ValidateUserID checks a user id: a name, and not one of the words a
// pause row writes in resumed_by for a pause no agent ended (the call
// ended, the time limit): a user so named would make its own resumes
// read as those.
func ValidateUserID(field, id string) error {
	if err := ValidateName(field, id); err != nil {
		return err
	}
	switch id {
	case ResumedByCTI, ResumedByTimer:
		return fieldErr(field, "user id %q is reserved: a pause row's resumed_by names %q for a pause the call's end or the time limit ended", id, id)
	}
	return nil
}

// Validate checks the site settings.
func (s Site) Validate(field string) error {
	if s.UploadTime != "" && !hhmm.MatchString(s.UploadTime) {
		return fieldErr(field+".upload_time", "must be HH:MM (24-hour), got %q", s.UploadTime)
	}
	if s.Timezone != "" {
		if _, err := LoadZone(s.Timezone); err != nil {
			return fieldErr(field+".timezone", "unknown time zone %q", s.Timezone)
		}
	}
	if s.MaxPauseSeconds < 0 || s.MaxPauseSeconds > MaxPauseSecondsLimit {
		return fieldErr(field+".max_pause_seconds", "must be 0 (off) or 1..%d seconds (a day), got %d", MaxPauseSecondsLimit, s.MaxPauseSeconds)
	}
	return nil
}

// Validate checks a metadata key definition.
func (m MetadataKey) Validate(field string) error {
	switch m.Type {
	case MetaText, MetaNumber, MetaDate:
		return nil
	}
	return fieldErr(field+".type", "must be text, number or date, got %q", m.Type)
}

// Validate checks a team's workflow.
func (t Team) Validate(field string) error {
	for i, p := range t.Inclusion {
		if !pattern.MatchString(p) {
			return fieldErr(fmt.Sprintf("%s.inclusion[%d]", field, i), "pattern %q may hold only digits, + # and * wildcards", p)
		}
	}
	for i, p := range t.Exclusion {
		if !pattern.MatchString(p) {
			return fieldErr(fmt.Sprintf("%s.exclusion[%d]", field, i), "pattern %q may hold only digits, + # and * wildcards", p)
		}
	}
	for i, c := range t.Classifiers {
		f := fmt.Sprintf("%s.classifiers[%d]", field, i)
		switch c.Direction {
		case "", "any", DirectionInbound, DirectionOutbound, DirectionInternal:
		default:
			return fieldErr(f+".direction", "must be inbound, outbound, internal or any, got %q", c.Direction)
		}
		if c.NumberPattern != "" && !pattern.MatchString(c.NumberPattern) {
			return fieldErr(f+".number_pattern", "pattern %q may hold only digits, + # and * wildcards", c.NumberPattern)
		}
		if c.Percent < 0 || c.Percent > 100 {
			return fieldErr(f+".percent", "must be 0..100, got %d", c.Percent)
		}
	}
	if t.RetentionDays < 0 || t.RetentionDays > MaxRetentionDays {
		return fieldErr(field+".retention_days", "must be 0..%d days, got %d", MaxRetentionDays, t.RetentionDays)
	}
	if t.TaggedRetentionDays < 0 || t.TaggedRetentionDays > MaxRetentionDays {
		return fieldErr(field+".tagged_retention_days", "must be 0..%d days, got %d", MaxRetentionDays, t.TaggedRetentionDays)
	}
	return nil
}

// Validate checks a user.
func (u User) Validate(field string) error {
	switch u.Recording {
	case RecDesktop, RecServer, RecNetwork, RecGateway:
	default:
		return fieldErr(field+".recording", "must be desktop, server, network or gateway, got %q", u.Recording)
	}
	if u.Extension != "" && !ValidExtension(u.Extension) {
		return fieldErr(field+".extension", "extension %q may hold only digits, + and # (at most %d)", u.Extension, MaxExtensionLen)
	}
	if strings.TrimSpace(u.Team) == "" {
		return fieldErr(field+".team", "is required")
	}
	return nil
}

// MaxExtensionLen is the longest extension a user is configured with or
// logs in to.
const MaxExtensionLen = 32

// ValidExtension reports whether ext is an extension a user may be
// configured with or log in to: 1 to MaxExtensionLen digits, + and #,
// with at least one digit. (Until 2026-11-30 a configured one could hold
// the * of a pattern too, and a login took any text.)
func ValidExtension(ext string) bool {
	if ext == "" || len(ext) > MaxExtensionLen {
		return false
	}
	digit := false
	for i := 0; i < len(ext); i++ {
		switch c := ext[i]; {
		case c >= '0' && c <= '9':
			digit = true
		case c != '+' && c != '#':
			return false
		}
	}
	return digit
}

// MatchPattern reports whether s matches p, where * matches any run of
// characters (also none). Matching is on the whole string, byte by byte:
// patterns are ASCII (digits, +, #), so a byte of theirs never matches
// inside a multi-byte character.
//
// It takes at most len(p)×len(s) steps: on a mismatch it goes back only
// to the last *, taking one more byte into it. Trying every split at
// every * instead (as this did before) took 8.7 s for a 14-byte pattern
// of 7 stars against a 64-digit number, in the fold of every call.
func MatchPattern(p, s string) bool {
	pi, si := 0, 0
	star, taken := -1, 0 // the last * seen in p, and where its run in s ends
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, taken = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			taken++
			pi, si = star+1, taken
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
