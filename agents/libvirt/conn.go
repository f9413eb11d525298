package libvirt

import (
	"context"
	"errors"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// conn is the part of go-libvirt the driver uses. *golibvirt.Libvirt
// satisfies it; unit tests use a fake that keeps domains in memory.
type conn interface {
	Connect() error
	Disconnect() error
	Disconnected() <-chan struct{}

	ConnectGetVersion() (uint64, error)
	ConnectGetLibVersion() (uint64, error)
	NodeGetInfo() (rModel [32]int8, rMemory uint64, rCpus int32, rMhz int32, rNodes int32, rSockets int32, rCores int32, rThreads int32, err error)
	ConnectListAllDomains(needResults int32, flags golibvirt.ConnectListAllDomainsFlags) ([]golibvirt.Domain, uint32, error)
	LifecycleEvents(ctx context.Context) (<-chan golibvirt.DomainEventLifecycleMsg, error)

	DomainLookupByName(name string) (golibvirt.Domain, error)
	DomainDefineXMLFlags(xml string, flags golibvirt.DomainDefineFlags) (golibvirt.Domain, error)
	DomainCreateXML(xml string, flags golibvirt.DomainCreateFlags) (golibvirt.Domain, error)
	DomainCreateWithFlags(dom golibvirt.Domain, flags uint32) (golibvirt.Domain, error)
	DomainDestroyFlags(dom golibvirt.Domain, flags golibvirt.DomainDestroyFlagsValues) error
	DomainUndefineFlags(dom golibvirt.Domain, flags golibvirt.DomainUndefineFlagsValues) error
	DomainShutdownFlags(dom golibvirt.Domain, flags golibvirt.DomainShutdownFlagValues) error
	DomainSuspend(dom golibvirt.Domain) error
	DomainResume(dom golibvirt.Domain) error
	DomainManagedSave(dom golibvirt.Domain, flags uint32) error
	DomainHasManagedSaveImage(dom golibvirt.Domain, flags uint32) (int32, error)
	DomainManagedSaveRemove(dom golibvirt.Domain, flags uint32) error
	DomainGetState(dom golibvirt.Domain, flags uint32) (int32, int32, error)
	DomainGetXMLDesc(dom golibvirt.Domain, flags golibvirt.DomainXMLFlags) (string, error)
	DomainAttachDeviceFlags(dom golibvirt.Domain, xml string, flags uint32) error
	DomainDetachDeviceFlags(dom golibvirt.Domain, xml string, flags uint32) error
}

var _ conn = (*golibvirt.Libvirt)(nil)

// libvirtCode returns the libvirt error number in err's chain, or -1.
func libvirtCode(err error) int {
	var le golibvirt.Error
	if errors.As(err, &le) {
		return int(le.Code)
	}
	return -1
}

// isNoDomain reports libvirt's "no such domain".
func isNoDomain(err error) bool { return golibvirt.IsNotFound(err) }

// isNotRunning reports libvirt's answer to stopping what is not running
// ("domain is not running", an invalid operation).
func isNotRunning(err error) bool {
	return libvirtCode(err) == int(golibvirt.ErrOperationInvalid)
}

// translate maps a libvirt error to a fault at the agent's edge: no such
// domain is NotFound, an operation the domain's state forbids is Conflict,
// anything else is Internal with the libvirt text kept for the log.
func translate(err error, uuid, what string) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	switch {
	case isNoDomain(err):
		return fault.Wrap(fault.NotFound, err, fmt.Sprintf("Instance %s could not be found on this host.", uuid))
	case libvirtCode(err) == int(golibvirt.ErrOperationInvalid):
		return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Cannot %s instance %s in its current state.", what, uuid))
	}
	return fault.Wrap(fault.Internal, fmt.Errorf("%s instance %s: %w", what, uuid, err), fmt.Sprintf("The hypervisor failed to %s the instance.", what))
}
