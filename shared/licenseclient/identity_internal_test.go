package licenseclient

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Processes starting together on one state directory agree on one id.
func TestStateInstanceIDIsMadeOnce(t *testing.T) {
	dir := t.TempDir()
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := InstanceID(FromState, dir, nil)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || !strings.HasPrefix(id, "caio-") {
			t.Fatalf("ids %v: want one", ids)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "instance-id")); err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Fatalf("the kept id: %v %v, want a private file", info, err)
	}
}

// The machine id itself never leaves the host: the instance id is derived
// from it, the same on every start.
func TestMachineIDIsHashed(t *testing.T) {
	machineIDPath = filepath.Join(t.TempDir(), "machine-id")
	defer func() { machineIDPath = "/etc/machine-id" }()
	const m = "4c4c4544004e3910804cb4c04f473532"
	os.WriteFile(machineIDPath, []byte(m+"\n"), 0o444)
	a, err := InstanceID(FromMachineID, "", nil)
	b, _ := InstanceID(FromMachineID, "", nil)
	if err != nil || a != b || strings.Contains(a, m) || !strings.HasPrefix(a, "machine-") {
		t.Fatalf("ids %q %q (%v): want one stable id not showing the machine id", a, b, err)
	}
	os.Remove(machineIDPath)
	if _, err := InstanceID(FromMachineID, "", nil); err == nil || !strings.Contains(err.Error(), "machine-id") {
		t.Fatalf("no machine id: %v", err)
	}
}
