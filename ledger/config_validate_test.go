package ledger

import (
	"errors"
	"fmt"
	"testing"
)

// validConfig is a document Validate takes; each case of
// TestConfigValidateNamesTheField changes one thing in it.
func validConfig() Config {
	return Config{
		Site:     Site{UploadTime: "23:00", Timezone: "UTC"},
		Metadata: map[string]MetadataKey{"k": {Type: MetaText}},
		Teams: map[string]Team{"t": {
			Inclusion:   []string{"34*"},
			Exclusion:   []string{"+1800*"},
			Classifiers: []Classifier{{Direction: DirectionInbound, NumberPattern: "*", Percent: 100}},
		}},
		Users: map[string]User{"u": {Team: "t", Recording: RecDesktop, Extension: "3420"}},
	}
}

// TestConfigValidateNamesTheField: Validate refuses each value the API
// and the --config file must refuse, naming the field at fault, and
// takes the values at the edges of what is allowed.
func TestConfigValidateNamesTheField(t *testing.T) {
	team := func(c *Config, f func(*Team)) {
		tm := c.Teams["t"]
		f(&tm)
		c.Teams["t"] = tm
	}
	classifier := func(c *Config, f func(*Classifier)) {
		team(c, func(tm *Team) { f(&tm.Classifiers[0]) })
	}
	user := func(c *Config, f func(*User)) {
		u := c.Users["u"]
		f(&u)
		c.Users["u"] = u
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		field  string // "" when the change is valid
	}{
		{"as it is", func(*Config) {}, ""},
		{"the vendor's 10 metadata keys", func(c *Config) {
			for i := range MaxMetadataKeys - 1 {
				c.Metadata[fmt.Sprint("k", i)] = MetadataKey{Type: MetaNumber}
			}
		}, ""},
		{"11 metadata keys", func(c *Config) {
			for i := range MaxMetadataKeys {
				c.Metadata[fmt.Sprint("k", i)] = MetadataKey{Type: MetaDate}
			}
		}, "metadata"},
		{"a metadata key's name", func(c *Config) { c.Metadata["a b"] = MetadataKey{Type: MetaText} }, "metadata.a b"},
		{"a metadata key's type", func(c *Config) { c.Metadata["k"] = MetadataKey{Type: "money"} }, "metadata.k.type"},
		{"a metadata key without a type", func(c *Config) { c.Metadata["k"] = MetadataKey{} }, "metadata.k.type"},
		{"a team's name", func(c *Config) { c.Teams["a b"] = c.Teams["t"] }, "teams.a b"},
		{"a user id", func(c *Config) { c.Users["a b"] = c.Users["u"] }, "users.a b"},
		{"an upload time past the day", func(c *Config) { c.Site.UploadTime = "24:00" }, "site.upload_time"},
		{"an upload time without its minutes", func(c *Config) { c.Site.UploadTime = "23" }, "site.upload_time"},
		{"a pause limit below zero", func(c *Config) { c.Site.MaxPauseSeconds = -1 }, "site.max_pause_seconds"},
		{"a pause limit of a day", func(c *Config) { c.Site.MaxPauseSeconds = MaxPauseSecondsLimit }, ""},
		{"a pause limit past a day", func(c *Config) { c.Site.MaxPauseSeconds = MaxPauseSecondsLimit + 1 }, "site.max_pause_seconds"},
		{"an inclusion pattern", func(c *Config) { team(c, func(tm *Team) { tm.Inclusion = []string{"34*", "34x"} }) }, "teams.t.inclusion[1]"},
		{"an exclusion pattern", func(c *Config) { team(c, func(tm *Team) { tm.Exclusion = []string{"+1 800"} }) }, "teams.t.exclusion[0]"},
		{"a classifier of any direction", func(c *Config) { classifier(c, func(cl *Classifier) { cl.Direction = "any" }) }, ""},
		{"a classifier's direction", func(c *Config) { classifier(c, func(cl *Classifier) { cl.Direction = "inbond" }) }, "teams.t.classifiers[0].direction"},
		{"a classifier's number pattern", func(c *Config) { classifier(c, func(cl *Classifier) { cl.NumberPattern = "1-800" }) }, "teams.t.classifiers[0].number_pattern"},
		{"a classifier's percent below zero", func(c *Config) { classifier(c, func(cl *Classifier) { cl.Percent = -1 }) }, "teams.t.classifiers[0].percent"},
		{"a classifier's percent of none", func(c *Config) { classifier(c, func(cl *Classifier) { cl.Percent = 0 }) }, ""},
		{"a classifier's percent past all", func(c *Config) { classifier(c, func(cl *Classifier) { cl.Percent = 101 }) }, "teams.t.classifiers[0].percent"},
		{"a retention below zero", func(c *Config) { team(c, func(tm *Team) { tm.RetentionDays = -1 }) }, "teams.t.retention_days"},
		{"the longest retention", func(c *Config) {
			team(c, func(tm *Team) { tm.RetentionDays, tm.TaggedRetentionDays = MaxRetentionDays, MaxRetentionDays })
		}, ""},
		{"a retention past the longest", func(c *Config) { team(c, func(tm *Team) { tm.RetentionDays = MaxRetentionDays + 1 }) }, "teams.t.retention_days"},
		{"a tagged retention below zero", func(c *Config) { team(c, func(tm *Team) { tm.TaggedRetentionDays = -1 }) }, "teams.t.tagged_retention_days"},
		{"a tagged retention past the longest", func(c *Config) { team(c, func(tm *Team) { tm.TaggedRetentionDays = MaxRetentionDays + 1 }) }, "teams.t.tagged_retention_days"},
		{"a user without a recording type", func(c *Config) { user(c, func(u *User) { u.Recording = "" }) }, "users.u.recording"},
		{"a user's recording type", func(c *Config) { user(c, func(u *User) { u.Recording = "analog" }) }, "users.u.recording"},
		{"a user of each recording type", func(c *Config) {
			for _, r := range []string{RecDesktop, RecServer, RecNetwork, RecGateway} {
				c.Users[r] = User{Team: "t", Recording: r}
			}
		}, ""},
		{"a user's extension", func(c *Config) { user(c, func(u *User) { u.Extension = "34 20" }) }, "users.u.extension"},
		{"a user without a team", func(c *Config) { user(c, func(u *User) { u.Team = "" }) }, "users.u.team"},
		{"a user of a blank team", func(c *Config) { user(c, func(u *User) { u.Team = " " }) }, "users.u.team"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			err := c.Validate()
			var fe *FieldError
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid)):
				t.Errorf("Validate = %v, want a field error naming %s", err, tc.field)
			}
		})
	}
}
