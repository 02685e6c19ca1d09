package ingest

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// configUndone lists what a configuration document put over current takes
// away or changes (not what it only adds), one phrase per part, sorted:
// "users removed: asmith", "site changed". --config replaces the whole
// document, changes made through the API included, so an administrator
// must be told what a restart undid.
func configUndone(current, doc ledger.Config) []string {
	var out []string
	var zero ledger.Config
	zero.Normalize()
	site := jsonOf(current.Site)
	if !reflect.DeepEqual(site, jsonOf(doc.Site)) && !reflect.DeepEqual(site, jsonOf(zero.Site)) {
		// From what was set, not from the defaults; each setting named,
		// since a zone or upload time moves the days' bounds.
		out = append(out, "site changed: "+FieldChanges(site, jsonOf(doc.Site)))
	}
	out = append(out, undoneIn("metadata keys", current.Metadata, doc.Metadata)...)
	out = append(out, undoneIn("teams", current.Teams, doc.Teams)...)
	out = append(out, undoneIn("users", current.Users, doc.Users)...)
	return out
}

// undoneIn names the members of current that doc lacks or holds otherwise.
func undoneIn[V any](what string, current, doc map[string]V) []string {
	var removed, changed []string
	for k, v := range current {
		w, ok := doc[k]
		switch {
		case !ok:
			removed = append(removed, k)
		case !reflect.DeepEqual(jsonOf(v), jsonOf(w)):
			changed = append(changed, k)
		}
	}
	var out []string
	if len(removed) > 0 {
		out = append(out, what+" removed: "+nameList(removed))
	}
	if len(changed) > 0 {
		out = append(out, what+" changed: "+nameList(changed))
	}
	return out
}

// jsonOf is v as its JSON reads back, so that a nil and an empty list
// compare equal.
func jsonOf(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var x any
	if json.Unmarshal(b, &x) != nil {
		return nil
	}
	return x
}

// nameList is names sorted, at most 10 of them and how many more.
func nameList(names []string) string {
	slices.Sort(names)
	const most = 10
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:most], ", ") + " and " + strconv.Itoa(len(names)-most) + " more"
}

// configAdded lists the metadata keys, teams and users doc holds and
// current does not ("users added: jdoe"): after a change through the API
// deleted one, a file that still holds it puts it back.
func configAdded(current, doc ledger.Config) []string {
	var out []string
	out = append(out, addedIn("metadata keys", current.Metadata, doc.Metadata)...)
	out = append(out, addedIn("teams", current.Teams, doc.Teams)...)
	out = append(out, addedIn("users", current.Users, doc.Users)...)
	return out
}

// addedIn names the members of doc that current lacks.
func addedIn[V any](what string, current, doc map[string]V) []string {
	var added []string
	for k := range doc {
		if _, ok := current[k]; !ok {
			added = append(added, k)
		}
	}
	if len(added) == 0 {
		return nil
	}
	return []string{what + " added: " + nameList(added)}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FieldChanges names the members of two decoded JSON objects that differ
// (serve's --config log, and simulate's report of what its setup replaced), as
// "timezone \"Europe/Paris\" → \"UTC\"", sorted by name.
func FieldChanges(was, now any) string {
	a, _ := was.(map[string]any)
	b, _ := now.(map[string]any)
	names := keysOf(a)
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var parts []string
	for _, k := range names {
		if !reflect.DeepEqual(a[k], b[k]) {
			x, _ := json.Marshal(a[k])
			y, _ := json.Marshal(b[k])
			parts = append(parts, k+" "+string(x)+" → "+string(y))
		}
	}
	return strings.Join(parts, ", ")
}
