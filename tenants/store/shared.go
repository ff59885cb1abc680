package store

import (
	"fmt"
	"sort"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// putShared records a stored SharedService. Like a tier, a value that
// does not decode or validate keeps the service's last good version (or
// leaves it out), is logged and counted once per stored revision; the
// tenants are not affected.
func (c *catalogState) putShared(name string, kv keyValue) bool {
	if c.sharedRevs[name] == kv.modRev {
		return false
	}
	c.sharedRevs[name] = kv.modRev
	o, err := decodeStored(kv.value, kv.modRev)
	if err == nil {
		if s, ok := o.(*tenants.SharedService); !ok || s.Metadata.Name != name {
			err = fmt.Errorf("key shared/%s does not hold SharedService %q", name, name)
		} else if list := tenants.Validate(s, nil); len(list) > 0 {
			err = list
		} else {
			c.shared[name] = s
			return true
		}
	}
	c.s.metrics.invalidValues.WithLabelValues(string(tenants.KindSharedService)).Inc()
	c.s.log.Warn("stored shared service is invalid; keeping its last good version", "shared_service", name, "revision", kv.modRev, "error", err)
	return false
}

// delShared forgets a deleted SharedService.
func (c *catalogState) delShared(name string) bool {
	delete(c.shared, name)
	delete(c.sharedRevs, name)
	return true
}

// sharedServices lists the last good shared services, sorted by name. The
// objects are reused while their value is unchanged, so consumers may
// compare them by pointer.
func (c *catalogState) sharedServices() []*tenants.SharedService {
	out := make([]*tenants.SharedService, 0, len(c.shared))
	for _, s := range c.shared {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out
}
