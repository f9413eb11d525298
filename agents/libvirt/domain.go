package libvirt

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
)

// The domain definition is built from these structures and encoding/xml,
// never by concatenating text: the one piece of user text (the instance
// name) lands in <metadata> as escaped character data, and everything else
// is either ours or validated by the agent.

// metadataNS names Nimbus's element inside <metadata>.
const metadataNS = "http://nimbus-cloud.org/xmlns/libvirt/instance/1.0"

type domainXML struct {
	XMLName    xml.Name     `xml:"domain"`
	Type       string       `xml:"type,attr"`
	Name       string       `xml:"name"`
	UUID       string       `xml:"uuid"`
	Metadata   *metadataXML `xml:"metadata,omitempty"`
	Memory     sizeXML      `xml:"memory"`
	VCPU       int          `xml:"vcpu"`
	SysInfo    *sysInfoXML  `xml:"sysinfo,omitempty"`
	OS         osXML        `xml:"os"`
	Features   featuresXML  `xml:"features"`
	CPU        *cpuXML      `xml:"cpu,omitempty"`
	Clock      clockXML     `xml:"clock"`
	OnPoweroff string       `xml:"on_poweroff"`
	OnReboot   string       `xml:"on_reboot"`
	OnCrash    string       `xml:"on_crash"`
	Devices    devicesXML   `xml:"devices"`
}

type metadataXML struct {
	Instance instanceMetaXML `xml:"http://nimbus-cloud.org/xmlns/libvirt/instance/1.0 instance"`
}

// instanceMetaXML is what an operator reading `virsh dumpxml` wants to know
// about the guest; nothing in it is read back as configuration.
type instanceMetaXML struct {
	Name        string `xml:"name"`
	ProjectID   string `xml:"project_id,omitempty"`
	ImageID     string `xml:"image_id"`
	VCPUs       int    `xml:"flavor>vcpus"`
	MemoryMB    int64  `xml:"flavor>memory_mb"`
	RootGB      int64  `xml:"flavor>root_gb"`
	EphemeralGB int64  `xml:"flavor>ephemeral_gb"`
	SwapMB      int64  `xml:"flavor>swap_mb"`
	CreatedAt   string `xml:"created_at"`
}

type sizeXML struct {
	Unit  string `xml:"unit,attr"`
	Value int64  `xml:",chardata"`
}

type sysInfoXML struct {
	Type    string     `xml:"type,attr"`
	Entries []entryXML `xml:"system>entry"`
}

type entryXML struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

type osXML struct {
	Type   osTypeXML  `xml:"type"`
	Boot   []bootXML  `xml:"boot"`
	SMBIOS *smbiosXML `xml:"smbios,omitempty"`
}

type osTypeXML struct {
	Arch    string `xml:"arch,attr"`
	Machine string `xml:"machine,attr"`
	Value   string `xml:",chardata"`
}

type bootXML struct {
	Dev string `xml:"dev,attr"`
}

type smbiosXML struct {
	Mode string `xml:"mode,attr"`
}

type featuresXML struct {
	ACPI *struct{} `xml:"acpi"`
	APIC *struct{} `xml:"apic"`
}

type cpuXML struct {
	Mode string `xml:"mode,attr"`
}

type clockXML struct {
	Offset string     `xml:"offset,attr"`
	Timers []timerXML `xml:"timer"`
}

type timerXML struct {
	Name       string `xml:"name,attr"`
	TickPolicy string `xml:"tickpolicy,attr,omitempty"`
	Present    string `xml:"present,attr,omitempty"`
}

type devicesXML struct {
	Disks      []diskXML      `xml:"disk"`
	Interfaces []interfaceXML `xml:"interface"`
	Serials    []serialXML    `xml:"serial"`
	Consoles   []consoleXML   `xml:"console"`
	Inputs     []inputXML     `xml:"input"`
	Graphics   []graphicsXML  `xml:"graphics"`
	Video      *videoXML      `xml:"video,omitempty"`
	MemBalloon *modelOnlyXML  `xml:"memballoon,omitempty"`
	RNG        *rngXML        `xml:"rng,omitempty"`
}

type diskXML struct {
	Type     string     `xml:"type,attr"`
	Device   string     `xml:"device,attr"`
	Driver   driverXML  `xml:"driver"`
	Source   sourceXML  `xml:"source"`
	Target   targetXML  `xml:"target"`
	ReadOnly *struct{}  `xml:"readonly"`
	Serial   string     `xml:"serial,omitempty"`
	Boot     *bootOrder `xml:"boot,omitempty"`
}

type bootOrder struct {
	Order int `xml:"order,attr"`
}

type driverXML struct {
	Name    string `xml:"name,attr"`
	Type    string `xml:"type,attr"`
	Discard string `xml:"discard,attr,omitempty"`
}

type sourceXML struct {
	File string `xml:"file,attr"`
}

type targetXML struct {
	Dev string `xml:"dev,attr"`
	Bus string `xml:"bus,attr"`
}

type interfaceXML struct {
	// XMLName lets an interface be encoded alone, for hot-plugging.
	XMLName xml.Name   `xml:"interface"`
	Type    string     `xml:"type,attr"`
	MAC     addressXML `xml:"mac"`
	Source  bridgeXML  `xml:"source"`
	Target  devXML     `xml:"target"`
	Model   typeXML    `xml:"model"`
	MTU     *mtuXML    `xml:"mtu,omitempty"`
}

type addressXML struct {
	Address string `xml:"address,attr"`
}

type bridgeXML struct {
	Bridge string `xml:"bridge,attr"`
}

type devXML struct {
	Dev string `xml:"dev,attr"`
}

type typeXML struct {
	Type string `xml:"type,attr"`
}

type mtuXML struct {
	Size int `xml:"size,attr"`
}

type serialXML struct {
	Type   string           `xml:"type,attr"`
	Log    *logXML          `xml:"log,omitempty"`
	Target *serialTargetXML `xml:"target,omitempty"`
}

type serialTargetXML struct {
	Port int `xml:"port,attr"`
}

type logXML struct {
	File   string `xml:"file,attr"`
	Append string `xml:"append,attr,omitempty"`
}

type consoleXML struct {
	Type   string           `xml:"type,attr"`
	Target consoleTargetXML `xml:"target"`
}

type consoleTargetXML struct {
	Type string `xml:"type,attr"`
	Port int    `xml:"port,attr"`
}

type inputXML struct {
	Type string `xml:"type,attr"`
	Bus  string `xml:"bus,attr"`
}

type graphicsXML struct {
	Type     string      `xml:"type,attr"`
	Port     int         `xml:"port,attr,omitempty"`
	AutoPort string      `xml:"autoport,attr,omitempty"`
	Listen   string      `xml:"listen,attr,omitempty"`
	Listens  []listenXML `xml:"listen"`
}

type listenXML struct {
	Type    string `xml:"type,attr"`
	Address string `xml:"address,attr,omitempty"`
}

type videoXML struct {
	Model typeXML `xml:"model"`
}

type modelOnlyXML struct {
	Model string `xml:"model,attr"`
}

type rngXML struct {
	Model   string     `xml:"model,attr"`
	Backend rngBackend `xml:"backend"`
}

type rngBackend struct {
	Model string `xml:"model,attr"`
	Value string `xml:",chardata"`
}

// domainName is the libvirt name of an instance. It holds only the UUID,
// which the agent has validated, so no user text reaches libvirt's names,
// paths or logs.
func domainName(uuid string) string { return "nimbus-" + uuid }

// diskSpec is one disk of a domain.
type diskSpec struct {
	path   string
	format string // qcow2 or raw
	dev    string // vda, vdb, hdd
	cdrom  bool
}

// domainSpec is everything buildDomain needs beyond the instance spec.
type domainSpec struct {
	name       string // empty: domainName(uuid)
	virtType   string // kvm or qemu
	disks      []diskSpec
	consoleLog string
	created    time.Time
}

// buildDomain returns the libvirt definition of an instance.
func buildDomain(s agentapi.InstanceSpec, d domainSpec) ([]byte, error) {
	if d.name == "" {
		d.name = domainName(s.UUID)
	}
	dom := domainXML{
		Type: d.virtType,
		Name: d.name,
		UUID: s.UUID,
		Metadata: &metadataXML{Instance: instanceMetaXML{
			Name: s.Name, ProjectID: s.ProjectID, ImageID: s.Image.ID,
			VCPUs: s.VCPUs, MemoryMB: s.MemoryMB, RootGB: s.RootGB, EphemeralGB: s.EphemeralGB, SwapMB: s.SwapMB,
			CreatedAt: d.created.UTC().Format(time.RFC3339),
		}},
		Memory: sizeXML{Unit: "MiB", Value: s.MemoryMB},
		VCPU:   s.VCPUs,
		// cloud-init and friends recognise an OpenStack guest by its SMBIOS
		// product; the serial and UUID let a guest know which instance it is.
		SysInfo: &sysInfoXML{Type: "smbios", Entries: []entryXML{
			{Name: "manufacturer", Value: "Nimbus"},
			{Name: "product", Value: "OpenStack Nova"},
			{Name: "serial", Value: s.UUID},
			{Name: "uuid", Value: s.UUID},
			{Name: "family", Value: "Virtual Machine"},
		}},
		OS: osXML{
			Type:   osTypeXML{Arch: "x86_64", Machine: "pc", Value: "hvm"},
			Boot:   []bootXML{{Dev: "hd"}},
			SMBIOS: &smbiosXML{Mode: "sysinfo"},
		},
		Features: featuresXML{ACPI: &struct{}{}, APIC: &struct{}{}},
		Clock: clockXML{Offset: "utc", Timers: []timerXML{
			{Name: "rtc", TickPolicy: "catchup"}, {Name: "pit", TickPolicy: "delay"}, {Name: "hpet", Present: "no"},
		}},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		// A crashed guest stops; the agent reports it and the user decides.
		OnCrash: "destroy",
		Devices: devicesXML{
			Serials:  []serialXML{{Type: "pty", Log: &logXML{File: d.consoleLog, Append: "on"}, Target: &serialTargetXML{Port: 0}}},
			Consoles: []consoleXML{{Type: "pty", Target: consoleTargetXML{Type: "serial", Port: 0}}},
			Inputs:   []inputXML{{Type: "tablet", Bus: "usb"}},
			// VNC only on the loopback: the agent's signed websocket is the
			// one way in.
			Graphics: []graphicsXML{{Type: "vnc", AutoPort: "yes", Listen: "127.0.0.1",
				Listens: []listenXML{{Type: "address", Address: "127.0.0.1"}}}},
			Video:      &videoXML{Model: typeXML{Type: "vga"}},
			MemBalloon: &modelOnlyXML{Model: "virtio"},
			RNG:        &rngXML{Model: "virtio", Backend: rngBackend{Model: "random", Value: "/dev/urandom"}},
		},
	}
	for _, dk := range d.disks {
		x := diskXML{
			Type:   "file",
			Device: "disk",
			Driver: driverXML{Name: "qemu", Type: dk.format},
			Source: sourceXML{File: dk.path},
			Target: targetXML{Dev: dk.dev, Bus: "virtio"},
		}
		if dk.cdrom {
			// The tiny image, like most guests, reads a config drive from an
			// IDE CD-ROM (ata_piix + sr_mod) on the pc machine.
			x.Device, x.Target.Bus, x.ReadOnly = "cdrom", "ide", &struct{}{}
		} else {
			x.Driver.Discard = "unmap"
		}
		dom.Devices.Disks = append(dom.Devices.Disks, x)
	}
	for _, n := range s.NICs {
		dom.Devices.Interfaces = append(dom.Devices.Interfaces, interfaceOf(n))
	}
	out, err := xml.MarshalIndent(dom, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode domain of %s: %w", s.UUID, err)
	}
	return out, nil
}

// interfaceOf is a NIC's device: a tap named TapName on its bridge.
func interfaceOf(n agentapi.NIC) interfaceXML {
	x := interfaceXML{
		Type:   "bridge",
		MAC:    addressXML{Address: n.MAC},
		Source: bridgeXML{Bridge: n.Bridge},
		Target: devXML{Dev: n.TapName},
		Model:  typeXML{Type: "virtio"},
	}
	if n.MTU > 0 {
		x.MTU = &mtuXML{Size: n.MTU}
	}
	return x
}

// liveDomain is the little the driver reads back from libvirt's XML.
type liveDomain struct {
	XMLName  xml.Name `xml:"domain"`
	Graphics []struct {
		Type string `xml:"type,attr"`
		Port string `xml:"port,attr"`
	} `xml:"devices>graphics"`
}

// vncPortOf returns the VNC port in a running domain's XML, 0 if none.
func vncPortOf(domXML string) int {
	var d liveDomain
	if err := xml.Unmarshal([]byte(domXML), &d); err != nil {
		return 0
	}
	for _, g := range d.Graphics {
		if g.Type == "vnc" {
			if p, err := strconv.Atoi(g.Port); err == nil && p > 0 {
				return p
			}
		}
	}
	return 0
}
