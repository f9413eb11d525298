package novnc

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which pages may open a console socket. A websocket
// handshake is a GET that any site's script can send with the victim's
// cookies, so the Origin header is the only thing telling them apart.
type originPolicy struct {
	// listed is set when the configuration names origins; an entry that
	// did not parse still counts, so a typo refuses everyone instead of
	// falling back to same-host.
	listed  bool
	origins map[string]bool // "scheme://host[:port]", lower case, default port dropped
}

func newOriginPolicy(allowed []string, log *slog.Logger) *originPolicy {
	o := &originPolicy{listed: len(allowed) > 0, origins: map[string]bool{}}
	for _, a := range allowed {
		u, err := url.Parse(strings.TrimSpace(a))
		if err != nil {
			log.Error("console: ignoring allowed origin that does not parse", "origin", a)
			continue
		}
		scheme, host, ok := originParts(u)
		if !ok {
			log.Error("console: ignoring allowed origin that is not an http(s) origin", "origin", a)
			continue
		}
		o.origins[scheme+"://"+host] = true
	}
	return o
}

// allowed reports whether r's Origin may open a console: one of the listed
// origins, or, with none listed, any origin on the host the request was
// sent to. A missing or "null" Origin is refused.
func (o *originPolicy) allowed(r *http.Request) bool {
	raw := r.Header.Values("Origin")
	if len(raw) != 1 {
		return false
	}
	u, err := url.Parse(raw[0])
	if err != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	scheme, host, ok := originParts(u)
	if !ok {
		return false
	}
	if o.listed {
		return o.origins[scheme+"://"+host]
	}
	return host == stripDefaultPort(scheme, strings.ToLower(r.Host))
}

// originParts returns u's scheme and host in the form origins compare in:
// lower case, without the scheme's default port.
func originParts(u *url.URL) (scheme, host string, ok bool) {
	scheme = strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.User != nil {
		return "", "", false
	}
	return scheme, stripDefaultPort(scheme, strings.ToLower(u.Host)), true
}

func stripDefaultPort(scheme, host string) string {
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	}
	return host
}
