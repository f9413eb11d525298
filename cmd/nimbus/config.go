package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// config is everything the control plane is started with. Each flag has an
// environment override, NIMBUS_<FLAG> with dashes as underscores.
type config struct {
	listen     string
	dataDir    string
	publicURL  string
	tokenTTL   time.Duration
	policyFile string
	tlsCert    string
	tlsKey     string
	logLevel   slog.Level

	// The all-in-one's local node agents.
	agents        int
	virtType      string
	libvirtSocket string
}

const usage = `Usage: nimbus <command> [flags]

Commands:
  up          run the all-in-one cloud: the control plane with first-run bootstrap
              and a local node agent (libvirt)
  controller  run the control plane only
  agent       run a node agent on a hypervisor host, joining a controller
  image build build the tiny guest image from Debian packages (as root)
  version     print the version

Run 'nimbus <command> -h' for the command's flags.
`

// parseConfig parses the flags of the up and controller commands.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("nimbus "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(key, def string) string {
		if v := getenv("NIMBUS_" + key); v != "" {
			return v
		}
		return def
	}
	c := &config{}
	var ttl, level string
	fs.StringVar(&c.listen, "listen", env("LISTEN", ":8080"), "address the HTTP server listens on (NIMBUS_LISTEN)")
	fs.StringVar(&c.dataDir, "data", env("DATA", "./data"), "data directory: database, admin-openrc (NIMBUS_DATA)")
	fs.StringVar(&c.publicURL, "public-url", env("PUBLIC_URL", ""),
		"base URL clients reach this server at, advertised in the catalog (NIMBUS_PUBLIC_URL; default from --listen)")
	fs.StringVar(&ttl, "token-ttl", env("TOKEN_TTL", "1h"), "lifetime of issued tokens (NIMBUS_TOKEN_TTL)")
	fs.StringVar(&c.policyFile, "policy-file", env("POLICY_FILE", ""), "optional oslo.policy YAML overrides (NIMBUS_POLICY_FILE)")
	fs.StringVar(&c.tlsCert, "tls-cert", env("TLS_CERT", ""), "TLS certificate file; enables HTTPS with --tls-key (NIMBUS_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", env("TLS_KEY", ""), "TLS private key file (NIMBUS_TLS_KEY)")
	fs.StringVar(&level, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (NIMBUS_LOG_LEVEL)")
	agents := "0"
	if name == "up" {
		agents = "1"
		fs.StringVar(&agents, "agents", env("AGENTS", "1"),
			"local node agents (hosts) to run; more than one simulates several hosts on this machine (NIMBUS_AGENTS)")
		fs.StringVar(&c.virtType, "virt-type", env("VIRT_TYPE", "auto"),
			"auto, kvm or qemu (TCG); auto boots the tiny image under KVM once and falls back to qemu (NIMBUS_VIRT_TYPE)")
		fs.StringVar(&c.libvirtSocket, "libvirt-socket", env("LIBVIRT_SOCKET", "/var/run/libvirt/libvirt-sock"), "libvirtd's unix socket")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	d, err := time.ParseDuration(ttl)
	if err != nil || d < time.Minute || d > 7*24*time.Hour {
		return nil, fmt.Errorf("--token-ttl %q: want a duration between 1m and 168h", ttl)
	}
	c.tokenTTL = d
	n, err := strconv.Atoi(agents)
	if err != nil || n < 0 || n > 16 {
		return nil, fmt.Errorf("--agents %q: want a number from 0 to 16", agents)
	}
	c.agents = n
	if n > 0 {
		if err := checkVirtType(c.virtType); err != nil {
			return nil, err
		}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	if c.publicURL != "" {
		c.publicURL = strings.TrimRight(c.publicURL, "/")
		if !strings.HasPrefix(c.publicURL, "http://") && !strings.HasPrefix(c.publicURL, "https://") {
			return nil, fmt.Errorf("--public-url %q: want an http:// or https:// URL", c.publicURL)
		}
	}
	return c, nil
}

// tls reports whether HTTPS is on.
func (c *config) tls() bool { return c.tlsCert != "" }

// advertisedURL is the public URL, or one derived from the address actually
// bound: a wildcard host becomes 127.0.0.1, which serves the all-in-one on
// this machine; other hosts set --public-url.
func (c *config) advertisedURL(bound net.Addr) string {
	if c.publicURL != "" {
		return c.publicURL
	}
	scheme := "http"
	if c.tls() {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return scheme + "://" + bound.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
