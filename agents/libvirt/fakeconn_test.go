package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
)

// fakeConn is a stateful stand-in for libvirtd: domains with definitions,
// states, managed-save images and lifecycle events, following libvirt's
// rules for which call is valid in which state.
type fakeConn struct {
	mu           sync.Mutex
	domains      map[string]*fakeDom
	subs         []chan golibvirt.DomainEventLifecycleMsg
	disconnected chan struct{}
	nextPort     int
	// kvmBroken makes KVM guests stop right after they start, as on a
	// nested host that accepts /dev/kvm but cannot run a kernel.
	kvmBroken bool
	// ignoreACPI makes guests ignore shutdown requests.
	ignoreACPI bool
	// failCreate fails the next DomainCreateWithFlags.
	failCreate bool
	// keepUnplugged makes running guests ignore hot-unplug requests, as a
	// guest without ACPI hot-plug support does.
	keepUnplugged bool
	// deviceCalls records DomainAttachDeviceFlags and
	// DomainDetachDeviceFlags calls.
	deviceCalls []deviceCall
}

type deviceCall struct {
	attach bool
	xml    string
	flags  uint32
}

type fakeDom struct {
	name        string
	uuid        golibvirt.UUID
	typ         string
	xml         string
	live        string // the running domain's definition
	persistent  bool
	state       golibvirt.DomainState
	managedSave bool
	savedPaused bool
	vncPort     int
}

func newFakeConn() *fakeConn {
	return &fakeConn{domains: map[string]*fakeDom{}, disconnected: make(chan struct{}), nextPort: 5900}
}

func lverr(code golibvirt.ErrorNumber, msg string) error {
	return golibvirt.Error{Code: uint32(code), Message: msg}
}

func (f *fakeConn) Connect() error                { return nil }
func (f *fakeConn) Disconnect() error             { return nil }
func (f *fakeConn) Disconnected() <-chan struct{} { return f.disconnected }
func (f *fakeConn) ConnectGetVersion() (uint64, error) {
	return 7002022, nil
}
func (f *fakeConn) ConnectGetLibVersion() (uint64, error) { return 9000000, nil }

func (f *fakeConn) NodeGetInfo() ([32]int8, uint64, int32, int32, int32, int32, int32, int32, error) {
	var model [32]int8
	for i, c := range "x86_64" {
		model[i] = int8(c)
	}
	return model, 16 << 20, 4, 2400, 1, 1, 4, 1, nil
}

func (f *fakeConn) ConnectListAllDomains(int32, golibvirt.ConnectListAllDomainsFlags) ([]golibvirt.Domain, uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []golibvirt.Domain
	for _, d := range f.domains {
		out = append(out, golibvirt.Domain{Name: d.name, UUID: d.uuid})
	}
	slices.SortFunc(out, func(a, b golibvirt.Domain) int { return strings.Compare(a.Name, b.Name) })
	return out, uint32(len(out)), nil
}

func (f *fakeConn) LifecycleEvents(ctx context.Context) (<-chan golibvirt.DomainEventLifecycleMsg, error) {
	ch := make(chan golibvirt.DomainEventLifecycleMsg, 256)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.subs = slices.DeleteFunc(f.subs, func(c chan golibvirt.DomainEventLifecycleMsg) bool { return c == ch })
		close(ch)
	}()
	return ch, nil
}

// event must be called with f.mu held.
func (f *fakeConn) event(d *fakeDom, ev golibvirt.DomainEventType, detail int32) {
	for _, ch := range f.subs {
		select {
		case ch <- golibvirt.DomainEventLifecycleMsg{Dom: golibvirt.Domain{Name: d.name, UUID: d.uuid}, Event: int32(ev), Detail: detail}:
		default:
		}
	}
}

func (f *fakeConn) get(dom golibvirt.Domain) (*fakeDom, error) {
	d, ok := f.domains[dom.Name]
	if !ok {
		return nil, lverr(golibvirt.ErrNoDomain, "Domain not found: no domain with matching name '"+dom.Name+"'")
	}
	return d, nil
}

func (f *fakeConn) DomainLookupByName(name string) (golibvirt.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(golibvirt.Domain{Name: name})
	if err != nil {
		return golibvirt.Domain{}, err
	}
	return golibvirt.Domain{Name: d.name, UUID: d.uuid}, nil
}

// parseDef reads what libvirt would from a definition, rejecting what it
// would reject.
func parseDef(x string) (*fakeDom, error) {
	var v struct {
		Type string `xml:"type,attr"`
		Name string `xml:"name"`
		UUID string `xml:"uuid"`
	}
	if err := xml.Unmarshal([]byte(x), &v); err != nil {
		return nil, lverr(golibvirt.ErrXMLError, "XML error: "+err.Error())
	}
	if v.Name == "" || v.UUID == "" || (v.Type != "kvm" && v.Type != "qemu") {
		return nil, lverr(golibvirt.ErrXMLError, "XML error: missing name, uuid or type")
	}
	var u golibvirt.UUID
	copy(u[:], strings.ReplaceAll(v.UUID, "-", ""))
	return &fakeDom{name: v.Name, uuid: u, typ: v.Type, xml: x, state: golibvirt.DomainShutoff}, nil
}

func (f *fakeConn) DomainDefineXMLFlags(x string, _ golibvirt.DomainDefineFlags) (golibvirt.Domain, error) {
	nd, err := parseDef(x)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.domains[nd.name]; ok {
		d.xml, d.typ, d.persistent = x, nd.typ, true
		f.event(d, golibvirt.DomainEventDefined, 1)
		return golibvirt.Domain{Name: d.name, UUID: d.uuid}, nil
	}
	nd.persistent = true
	f.domains[nd.name] = nd
	f.event(nd, golibvirt.DomainEventDefined, 0)
	return golibvirt.Domain{Name: nd.name, UUID: nd.uuid}, nil
}

// run starts d; f.mu held.
func (f *fakeConn) run(d *fakeDom) {
	d.state = golibvirt.DomainRunning
	if d.managedSave && d.savedPaused {
		d.state = golibvirt.DomainPaused
	}
	d.managedSave, d.savedPaused = false, false
	d.live = d.xml
	f.nextPort++
	d.vncPort = f.nextPort
	f.event(d, golibvirt.DomainEventStarted, 0)
	if d.typ == "kvm" && f.kvmBroken {
		d.state = golibvirt.DomainPaused // "KVM internal error": QEMU stops the guest
		f.event(d, golibvirt.DomainEventSuspended, 0)
	}
}

func (f *fakeConn) DomainCreateXML(x string, _ golibvirt.DomainCreateFlags) (golibvirt.Domain, error) {
	nd, err := parseDef(x)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.domains[nd.name]; ok {
		return golibvirt.Domain{}, lverr(golibvirt.ErrOperationFailed, "domain already exists")
	}
	f.domains[nd.name] = nd
	f.run(nd)
	return golibvirt.Domain{Name: nd.name, UUID: nd.uuid}, nil
}

func (f *fakeConn) DomainCreateWithFlags(dom golibvirt.Domain, _ uint32) (golibvirt.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return dom, err
	}
	if f.failCreate {
		f.failCreate = false
		return dom, lverr(golibvirt.ErrInternalError, "internal error: qemu unexpectedly closed the monitor")
	}
	if d.state != golibvirt.DomainShutoff && d.state != golibvirt.DomainCrashed {
		return dom, lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: domain is already running")
	}
	f.run(d)
	return dom, nil
}

// stopped marks d shut off; f.mu held.
func (f *fakeConn) stopped(d *fakeDom, detail golibvirt.DomainEventStoppedDetailType) {
	d.state, d.vncPort, d.live = golibvirt.DomainShutoff, 0, ""
	f.event(d, golibvirt.DomainEventStopped, int32(detail))
	if !d.persistent {
		delete(f.domains, d.name)
		f.event(d, golibvirt.DomainEventUndefined, 0)
	}
}

func active(d *fakeDom) bool {
	return d.state == golibvirt.DomainRunning || d.state == golibvirt.DomainPaused || d.state == golibvirt.DomainBlocked
}

func (f *fakeConn) DomainDestroyFlags(dom golibvirt.Domain, _ golibvirt.DomainDestroyFlagsValues) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	if !active(d) {
		return lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not running")
	}
	f.stopped(d, golibvirt.DomainEventStoppedDestroyed)
	return nil
}

func (f *fakeConn) DomainUndefineFlags(dom golibvirt.Domain, flags golibvirt.DomainUndefineFlagsValues) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	if d.managedSave && flags&golibvirt.DomainUndefineManagedSave == 0 {
		return lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: Refusing to undefine while domain managed save image exists")
	}
	if active(d) {
		d.persistent = false
		return nil
	}
	delete(f.domains, d.name)
	f.event(d, golibvirt.DomainEventUndefined, 0)
	return nil
}

func (f *fakeConn) DomainShutdownFlags(dom golibvirt.Domain, _ golibvirt.DomainShutdownFlagValues) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	if d.state != golibvirt.DomainRunning {
		return lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not running")
	}
	if !f.ignoreACPI {
		f.stopped(d, golibvirt.DomainEventStoppedShutdown)
	}
	return nil
}

func (f *fakeConn) DomainSuspend(dom golibvirt.Domain) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	if !active(d) {
		return lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not running")
	}
	d.state = golibvirt.DomainPaused
	f.event(d, golibvirt.DomainEventSuspended, 0)
	return nil
}

func (f *fakeConn) DomainResume(dom golibvirt.Domain) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	if d.state != golibvirt.DomainPaused {
		return lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not paused")
	}
	d.state = golibvirt.DomainRunning
	f.event(d, golibvirt.DomainEventResumed, 0)
	return nil
}

func (f *fakeConn) DomainManagedSave(dom golibvirt.Domain, flags uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	if !active(d) || !d.persistent {
		return lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not running")
	}
	d.managedSave = true
	d.savedPaused = flags&uint32(golibvirt.DomainSavePaused) != 0
	f.stopped(d, golibvirt.DomainEventStoppedSaved)
	return nil
}

func (f *fakeConn) DomainHasManagedSaveImage(dom golibvirt.Domain, _ uint32) (int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return 0, err
	}
	if d.managedSave {
		return 1, nil
	}
	return 0, nil
}

func (f *fakeConn) DomainManagedSaveRemove(dom golibvirt.Domain, _ uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	d.managedSave = false
	return nil
}

func (f *fakeConn) DomainGetState(dom golibvirt.Domain, _ uint32) (int32, int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return 0, 0, err
	}
	return int32(d.state), 0, nil
}

// DomainGetXMLDesc returns the definition; a running domain's live XML
// carries the port autoport chose, as libvirt's does.
func (f *fakeConn) DomainGetXMLDesc(dom golibvirt.Domain, flags golibvirt.DomainXMLFlags) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.get(dom)
	if err != nil {
		return "", err
	}
	if active(d) && flags&golibvirt.DomainXMLInactive == 0 {
		return strings.Replace(d.live, `<graphics type="vnc"`, fmt.Sprintf(`<graphics type="vnc" port="%d"`, d.vncPort), 1), nil
	}
	return d.xml, nil
}

// DomainAttachDeviceFlags adds an interface to the live and/or persistent
// definition; live needs a running domain, as in libvirt.
func (f *fakeConn) DomainAttachDeviceFlags(dom golibvirt.Domain, x string, flags uint32) error {
	return f.changeDevice(dom, x, flags, true)
}

// DomainDetachDeviceFlags removes an interface (matched by MAC) from the
// live and/or persistent definition; a missing one is an error, as in
// libvirt.
func (f *fakeConn) DomainDetachDeviceFlags(dom golibvirt.Domain, x string, flags uint32) error {
	return f.changeDevice(dom, x, flags, false)
}

func (f *fakeConn) changeDevice(dom golibvirt.Domain, x string, flags uint32, attach bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deviceCalls = append(f.deviceCalls, deviceCall{attach: attach, xml: x, flags: flags})
	d, err := f.get(dom)
	if err != nil {
		return err
	}
	var dev struct {
		XMLName xml.Name
		MAC     struct {
			Address string `xml:"address,attr"`
		} `xml:"mac"`
	}
	if err := xml.Unmarshal([]byte(x), &dev); err != nil || dev.XMLName.Local != "interface" || dev.MAC.Address == "" {
		return lverr(golibvirt.ErrXMLError, "XML error: not an interface with a MAC address")
	}
	live := flags&uint32(golibvirt.DomainDeviceModifyLive) != 0
	config := flags&uint32(golibvirt.DomainDeviceModifyConfig) != 0
	if live && !active(d) {
		return lverr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: domain is not running")
	}
	targets := []*string{}
	if config {
		targets = append(targets, &d.xml)
	}
	if live && !(f.keepUnplugged && !attach) {
		targets = append(targets, &d.live)
	}
	for _, t := range targets {
		i := interfaceWithMAC(*t, dev.MAC.Address)
		switch {
		case attach && i >= 0:
			return lverr(golibvirt.ErrOperationFailed, "operation failed: a device with MAC address "+dev.MAC.Address+" already exists")
		case attach:
			*t = strings.Replace(*t, "</devices>", x+"</devices>", 1)
		case i < 0:
			return lverr(golibvirt.ErrDeviceMissing, "device not found: no device matching MAC address "+dev.MAC.Address+" found")
		default:
			end := strings.Index((*t)[i:], "</interface>") + i + len("</interface>")
			*t = (*t)[:i] + (*t)[end:]
		}
	}
	return nil
}

// interfaceWithMAC returns where the <interface> element with mac starts
// in a definition, or -1.
func interfaceWithMAC(def, mac string) int {
	for off := 0; ; {
		i := strings.Index(def[off:], "<interface")
		if i < 0 {
			return -1
		}
		i += off
		end := strings.Index(def[i:], "</interface>")
		if end < 0 {
			return -1
		}
		if strings.Contains(strings.ToLower(def[i:i+end]), `address="`+strings.ToLower(mac)+`"`) {
			return i
		}
		off = i + end
	}
}

// fakeTools records commands and makes the files they would make, so tests
// can check both the argument discipline (explicit formats) and the files.
type fakeTools struct {
	mu    sync.Mutex
	calls [][]string
	// info answers qemu-img info per base path; the default is a clean
	// image of the declared format and 64 MiB.
	info map[string]string
	fail string // a command (name or "qemu-img <sub>") that fails
}

func (t *fakeTools) run(_ context.Context, _ limits, name string, args ...string) ([]byte, error) {
	t.mu.Lock()
	t.calls = append(t.calls, append([]string{name}, args...))
	fail := t.fail
	info := t.info[args[len(args)-1]]
	t.mu.Unlock()
	sub := name
	if name == "qemu-img" {
		sub = name + " " + args[0]
	}
	if fail == name || fail == sub {
		return nil, fmt.Errorf("%s: simulated failure", sub)
	}
	switch sub {
	case "qemu-img info":
		if info != "" {
			return []byte(info), nil
		}
		return []byte(fmt.Sprintf(`{"format":%q,"virtual-size":67108864}`, flagValue(args, "-f"))), nil
	case "qemu-img create":
		// create [-q] -f FMT [-F FMT -b BASE] PATH [SIZE]
		path := positional(args[1:])[0]
		return nil, os.WriteFile(path, []byte("created by: "+strings.Join(args, " ")), 0o644)
	case "qemu-img convert":
		return nil, os.WriteFile(args[len(args)-1], []byte("standalone of "+args[len(args)-2]), 0o644)
	case "genisoimage":
		return nil, os.WriteFile(flagValue(args, "-o"), []byte("iso"), 0o644)
	}
	return nil, nil
}

// flagValue returns the argument after flag.
func flagValue(args []string, flag string) string {
	for i, a := range args[:len(args)-1] {
		if a == flag {
			return args[i+1]
		}
	}
	return ""
}

// positional drops flags (and the values of those that take one).
func positional(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-f", "-F", "-b", "-O", "-o":
			i++
		case "-q", "-U":
		default:
			out = append(out, args[i])
		}
	}
	return out
}

func (t *fakeTools) commands() [][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

// fakeImages is the agent's image cache as the driver sees it.
type fakeImages struct {
	dir     string
	mu      sync.Mutex
	fetched []string
	uploads map[string][]byte
}

func (i *fakeImages) Fetch(_ context.Context, img agentapi.Image) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.fetched = append(i.fetched, img.ID)
	p := filepath.Join(i.dir, img.ID)
	return p, os.WriteFile(p, []byte("base "+img.ID), 0o644)
}

func (i *fakeImages) Upload(_ context.Context, id, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.uploads[id] = b
	return nil
}
