package simulator

import (
	"fmt"
)

// Team names of the simulated site.
const (
	TeamCare   = "care"   // archives every call
	TeamSales  = "sales"  // classifiers sample the calls
	TeamDialer = "dialer" // outbound dialer with a Don't Record list
)

// Agent is one simulated agent and its QM user configuration.
type Agent struct {
	Index      int
	UserID     string
	Team       string
	Recording  string // desktop, server or gateway
	Extension  string // configured default extension; "" for a hot-desk agent
	Phone      string // the extension the agent works on (logs in with it when hot-desking)
	Peripheral string
	HotDesk    bool
}

// Agents returns the n simulated agents. Every agent has its own extension,
// so agents never interfere with each other's calls.
func Agents(n int) []Agent {
	as := make([]Agent, n)
	for i := range as {
		a := Agent{
			Index:      i,
			UserID:     fmt.Sprintf("agent%05d", i),
			Phone:      fmt.Sprintf("3%05d", i),
			Peripheral: fmt.Sprintf("5%03d", i%7),
			Recording:  "desktop",
		}
		switch i % 3 {
		case 0:
			a.Team = TeamCare
		case 1:
			a.Team = TeamSales
		default:
			a.Team = TeamDialer
		}
		switch i % 10 {
		case 8:
			a.Recording = "server"
		case 9:
			a.Recording = "gateway"
		}
		a.HotDesk = i%4 == 3 && a.Recording != "gateway"
		if !a.HotDesk {
			a.Extension = a.Phone
		}
		as[i] = a
	}
	return as
}

// MetadataKeys are the site's metadata keys and their types (at most 10).
var metadataKeys = []struct{ Key, Type string }{
	{"account", "number"},
	{"agentname", "text"},
	{"callback", "date"},
	{"ordernum", "number"},
	{"note", "text"},
	{"campaign", "text"},
	{"amount", "number"},
	{"duedate", "date"},
}

// configRequests are the PUTs that configure the site for agents.
func configRequests(agents []Agent) []Request {
	var rs []Request
	put := func(path string, body string) {
		rs = append(rs, Request{Kind: KindConfig, Label: "config", Method: "PUT", Path: path,
			ContentType: "application/json", Body: []byte(body), Appends: 1})
	}
	put("/v1/config/site", `{"upload_time":"23:00","timezone":"UTC","max_pause_seconds":0,"server_host":"qm-base-1"}`)
	for _, k := range metadataKeys {
		put("/v1/config/metadata/"+k.Key, fmt.Sprintf(`{"type":%q}`, k.Type))
	}
	put("/v1/config/teams/"+TeamCare, `{"archive":true,"inclusion":[],"exclusion":[],"classifiers":[],"retention_days":90,"tagged_retention_days":365}`)
	put("/v1/config/teams/"+TeamSales, `{"archive":false,"inclusion":[],"exclusion":[],"classifiers":[{"direction":"inbound","number_pattern":"*","percent":30},{"direction":"outbound","number_pattern":"+1415*","percent":100}],"retention_days":60,"tagged_retention_days":365}`)
	put("/v1/config/teams/"+TeamDialer, `{"archive":false,"inclusion":[],"exclusion":["+1800555*","+1900*"],"classifiers":[{"direction":"outbound","number_pattern":"*","percent":100}],"retention_days":30,"tagged_retention_days":365}`)
	for _, a := range agents {
		ext := ""
		if a.Extension != "" {
			ext = fmt.Sprintf(`,"extension":%q`, a.Extension)
		}
		put("/v1/config/users/"+a.UserID, fmt.Sprintf(`{"name":"Agent %d","team":%q,"recording":%q%s,"peripheral_id":%q}`,
			a.Index, a.Team, a.Recording, ext, a.Peripheral))
	}
	return rs
}
