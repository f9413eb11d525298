package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/libvirt"
)

// joinTokenFile holds, under the data directory, a join token for agents on
// other hosts: `nimbus agent --join-token "$(cat data/agent-join-token)"`.
// It is renewed at every start.
const joinTokenFile = "agent-join-token"

// joinTokenTTL is how long that token lets new agents join.
const joinTokenTTL = 24 * time.Hour

// agentOptions configure one node agent with the libvirt driver.
type agentOptions struct {
	controllerURL string
	joinToken     string
	hostname      string
	listen        string
	advertiseURL  string
	stateDir      string
	virtType      string
	socket        string
	probeImage    string
	// network is the host's data plane; nil serves no network calls.
	network agent.NetworkPlane
}

// runAgent runs one node agent until ctx ends. ready, when set, is called
// once the agent has joined and serves its API.
func runAgent(ctx context.Context, o agentOptions, log *slog.Logger, ready func(id, url string)) error {
	if err := os.MkdirAll(o.stateDir, 0o711); err != nil {
		return fmt.Errorf("create agent state dir: %w", err)
	}
	probe := o.probeImage
	if _, err := os.Stat(probe); err != nil {
		probe = ""
	}
	drv, err := libvirt.New(ctx, libvirt.Config{
		StateDir:   o.stateDir,
		Socket:     o.socket,
		VirtType:   o.virtType,
		ProbeImage: probe,
		Logger:     log,
	})
	if err != nil {
		return fmt.Errorf("agent %s: start libvirt driver (is libvirtd running? `virtlogd -d; libvirtd -d`): %w", o.hostname, err)
	}
	defer drv.Close()
	return agent.Run(ctx, agent.Config{
		ControllerURL: o.controllerURL,
		JoinToken:     o.joinToken,
		Hostname:      o.hostname,
		ListenAddr:    o.listen,
		AdvertiseURL:  o.advertiseURL,
		StateDir:      o.stateDir,
		Driver:        drv,
		Network:       o.network,
		Logger:        log,
		OnReady:       ready,
	})
}

// localAgents are the node agents `nimbus up` runs in its own process: the
// first is this host, the others (--agents N) are extra hosts on the same
// machine with their own state directories, so scheduling across hosts can
// be tried and tested on one box.
type localAgents struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	plane  interface{ Close() error }
}

// startLocalAgents starts n agents joined to the controller at publicURL and
// waits until each has joined, or one failed, or timeout passed.
func startLocalAgents(ctx context.Context, cfg *config, publicURL, joinToken string, log *slog.Logger) (*localAgents, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	// The agents share this machine's kernel, so they share one data plane.
	plane, err := newLocalPlane(ctx, filepath.Join(cfg.dataDir, "net"), log.With("component", "netplane"))
	if err != nil {
		return nil, fmt.Errorf("network data plane (needs root, iproute2, iptables, dnsmasq): %w", err)
	}
	shared := newSharedPlane(plane)
	actx, cancel := context.WithCancel(ctx)
	la := &localAgents{cancel: cancel, plane: plane}
	readyc := make(chan string, cfg.agents)
	errc := make(chan error, cfg.agents)
	for i := 1; i <= cfg.agents; i++ {
		o := agentOptions{
			controllerURL: publicURL,
			joinToken:     joinToken,
			hostname:      host,
			listen:        "127.0.0.1:0",
			stateDir:      filepath.Join(cfg.dataDir, "agent"),
			virtType:      cfg.virtType,
			socket:        cfg.libvirtSocket,
			probeImage:    filepath.Join(cfg.dataDir, tinyImageFile),
		}
		if i > 1 {
			o.hostname = host + "-" + strconv.Itoa(i)
			o.stateDir = filepath.Join(cfg.dataDir, "agent-"+strconv.Itoa(i))
		}
		o.network = shared.For(o.hostname)
		alog := log.With("agent", o.hostname)
		la.wg.Add(1)
		go func() {
			defer la.wg.Done()
			err := runAgent(actx, o, alog, func(id, url string) {
				alog.Info("agent joined", "id", id, "url", url)
				readyc <- o.hostname
			})
			if err != nil && actx.Err() == nil {
				la.mu.Lock()
				la.err = errors.Join(la.err, err)
				la.mu.Unlock()
				errc <- err
			}
		}()
	}
	timeout := time.After(2 * time.Minute)
	for joined := 0; joined < cfg.agents; joined++ {
		select {
		case <-readyc:
		case err := <-errc:
			la.stop()
			return nil, err
		case <-timeout:
			la.stop()
			return nil, errors.New("local agents did not join within 2 minutes")
		case <-ctx.Done():
			la.stop()
			return nil, ctx.Err()
		}
	}
	return la, nil
}

// stop ends every local agent and waits for them; their guests keep
// running, as they would if the agent process were restarted.
func (la *localAgents) stop() {
	la.cancel()
	la.wg.Wait()
	if la.plane != nil {
		la.plane.Close()
	}
}

// agentCommand runs `nimbus agent`: a node agent on a hypervisor host,
// joining a controller.
func agentCommand(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("nimbus agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(key, def string) string {
		if v := getenv("NIMBUS_" + key); v != "" {
			return v
		}
		return def
	}
	host, _ := os.Hostname()
	var o agentOptions
	var level string
	fs.StringVar(&o.controllerURL, "controller", env("CONTROLLER", ""), "the controller's base URL, e.g. http://10.0.0.1:8080 (NIMBUS_CONTROLLER)")
	fs.StringVar(&o.joinToken, "join-token", env("JOIN_TOKEN", ""), "join token from the controller's data/"+joinTokenFile+"; needed until the agent has joined (NIMBUS_JOIN_TOKEN)")
	fs.StringVar(&o.hostname, "hostname", env("HOSTNAME", host), "this host's name in the cloud (NIMBUS_HOSTNAME)")
	fs.StringVar(&o.listen, "listen", env("AGENT_LISTEN", ":8081"), "address the agent API listens on (NIMBUS_AGENT_LISTEN)")
	fs.StringVar(&o.advertiseURL, "advertise-url", env("ADVERTISE_URL", ""), "URL the controller reaches this agent at (default from --listen)")
	fs.StringVar(&o.stateDir, "state-dir", env("STATE_DIR", "./data/agent"), "agent state: credential, instances, image cache (NIMBUS_STATE_DIR)")
	fs.StringVar(&o.virtType, "virt-type", env("VIRT_TYPE", "auto"), "auto, kvm or qemu (TCG); auto probes KVM once (NIMBUS_VIRT_TYPE)")
	fs.StringVar(&o.socket, "libvirt-socket", env("LIBVIRT_SOCKET", libvirt.DefaultSocket), "libvirtd's unix socket")
	fs.StringVar(&o.probeImage, "probe-image", env("PROBE_IMAGE", ""), "bootable image the KVM probe boots (the tiny image)")
	withNetwork := fs.Bool("network", env("NETWORK", "true") == "true", "run this host's network data plane: bridges, DHCP, routers, security groups (NIMBUS_NETWORK)")
	fs.StringVar(&level, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !strings.HasPrefix(o.controllerURL, "http://") && !strings.HasPrefix(o.controllerURL, "https://") {
		return errors.New("--controller: want the controller's http:// or https:// URL")
	}
	if err := checkVirtType(o.virtType); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: %w", level, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	o.controllerURL = strings.TrimRight(o.controllerURL, "/")
	if *withNetwork {
		plane, err := newLocalPlane(ctx, filepath.Join(o.stateDir, "net"), log.With("component", "netplane"))
		if err != nil {
			return fmt.Errorf("network data plane (needs root, iproute2, iptables, dnsmasq; --network=false runs without): %w", err)
		}
		defer plane.Close()
		o.network = plane
	}
	return runAgent(ctx, o, log, func(id, url string) { log.Info("agent joined", "id", id, "url", url) })
}

func checkVirtType(v string) error {
	switch v {
	case "auto", "kvm", "qemu":
		return nil
	}
	return fmt.Errorf("--virt-type %q: want auto, kvm or qemu", v)
}
