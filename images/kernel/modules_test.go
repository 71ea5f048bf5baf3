package kernel

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseModinfo(t *testing.T) {
	raw := "alias=md-personality-4\x00alias=pci:v*d*\x00license=GPL\x00depends=md-mod,async_xor,raid6_pq\x00" +
		"softdep=pre: crc32c post: foo\x00intree=Y\x00name=raid456\x00vermagic=6.1.0 SMP\x00\x00"
	mi, err := ParseModinfo([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := Modinfo{Name: "raid456", Depends: []string{"md_mod", "async_xor", "raid6_pq"}, SoftPre: []string{"crc32c"}, Aliases: []string{"md_personality_4"}}
	if !reflect.DeepEqual(mi, want) {
		t.Errorf("ParseModinfo = %+v, want %+v", mi, want)
	}
	mi, err = ParseModinfo([]byte("depends=\x00name=md_mod\x00"))
	if err != nil || mi.Name != "md_mod" || len(mi.Depends) != 0 {
		t.Errorf("empty depends: %+v, %v", mi, err)
	}
	if _, err := ParseModinfo([]byte("depends=a\x00")); err == nil {
		t.Error("modinfo without name= parsed")
	}
}

func TestOrder(t *testing.T) {
	mods := map[string]Modinfo{
		"raid456":    {Name: "raid456", Depends: []string{"md_mod", "async_pq", "async_xor", "libcrc32c"}},
		"md_mod":     {Name: "md_mod"},
		"async_pq":   {Name: "async_pq", Depends: []string{"async_tx", "raid6_pq", "async_xor"}},
		"async_xor":  {Name: "async_xor", Depends: []string{"xor", "async_tx"}},
		"async_tx":   {Name: "async_tx"},
		"xor":        {Name: "xor"},
		"raid6_pq":   {Name: "raid6_pq"},
		"libcrc32c":  {Name: "libcrc32c", SoftPre: []string{"crc32c", "crc32c_generic"}},
		"raid1":      {Name: "raid1", Depends: []string{"md_mod"}},
		"cyc_a":      {Name: "cyc_a", Depends: []string{"cyc_b"}},
		"cyc_b":      {Name: "cyc_b", Depends: []string{"cyc_a"}},
		"needs_gone": {Name: "needs_gone", Depends: []string{"gone"}},
	}
	builtin := map[string]bool{"crc32c_generic": true, "virtio": true}
	lookup := func(n string) (Modinfo, error) {
		if builtin[n] {
			return Modinfo{}, ErrBuiltin
		}
		if mi, ok := mods[n]; ok {
			return mi, nil
		}
		return Modinfo{}, ErrNoModule
	}
	tests := []struct {
		want    []string
		order   []string
		errLike string
	}{
		{want: []string{"raid1"}, order: []string{"md_mod", "raid1"}},
		{want: []string{"md-mod", "raid1", "raid1.ko"}, order: []string{"md_mod", "raid1"}},
		{want: []string{"raid456", "raid1"}, order: []string{"md_mod", "async_tx", "raid6_pq", "xor", "async_xor", "async_pq", "libcrc32c", "raid456", "raid1"}},
		{want: []string{"virtio", "raid1"}, order: []string{"md_mod", "raid1"}},
		{want: []string{"cyc_a"}, errLike: "cycle: cyc_a -> cyc_b -> cyc_a"},
		{want: []string{"nope"}, errLike: "module nope: no such module"},
		{want: []string{"needs_gone"}, errLike: "module gone (needed by needs_gone): no such module"},
	}
	for _, tt := range tests {
		got, err := Order(tt.want, lookup)
		if tt.errLike != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errLike) {
				t.Errorf("Order(%v) error = %v, want %q", tt.want, err, tt.errLike)
			}
			continue
		}
		if err != nil {
			t.Errorf("Order(%v): %v", tt.want, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.order) {
			t.Errorf("Order(%v) = %v, want %v", tt.want, got, tt.order)
		}
	}
}

// A soft dependency on an alias ("crc32c", which the generic kernel builds
// as the module crc32c_generic): the aliased module loads first, once,
// under its own name.
func TestOrderAlias(t *testing.T) {
	mods := map[string]Modinfo{
		"libcrc32c":      {Name: "libcrc32c", SoftPre: []string{"crc32c"}},
		"crc32c":         {Name: "crc32c_generic"}, // the lookup resolved the alias
		"crc32c_generic": {Name: "crc32c_generic"},
		"btrfs":          {Name: "btrfs", Depends: []string{"libcrc32c", "crc32c_generic"}},
	}
	lookup := func(n string) (Modinfo, error) {
		if mi, ok := mods[n]; ok {
			return mi, nil
		}
		return Modinfo{}, ErrNoModule
	}
	got, err := Order([]string{"btrfs"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"crc32c_generic", "libcrc32c", "btrfs"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Order = %v, want %v", got, want)
	}
}

func TestParseAliasesAndPick(t *testing.T) {
	a, err := parseAliases(strings.NewReader(`# Aliases extracted from modules themselves.
alias crypto-crc32c crc32c_intel
alias crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias pci:v00008086d00002922sv*sd*bc*sc*i* ahci
alias fs-btrfs btrfs
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := a["crc32c"]; !reflect.DeepEqual(got, []string{"crc32c_intel", "crc32c_generic"}) {
		t.Errorf("crc32c -> %v", got)
	}
	if len(a) != 3 {
		t.Errorf("device (wildcard) aliases kept: %v", a)
	}
	paths := map[string]string{"crc32c_intel": "a.ko", "crc32c_generic": "b.ko"}
	if m := pickAlias(a["crc32c"], paths, nil); m != "crc32c_generic" {
		t.Errorf("picked %q, want the generic implementation", m)
	}
	if m := pickAlias(a["crc32c"], paths, map[string]bool{"crc32c_intel": true}); m != "crc32c_intel" {
		t.Errorf("picked %q, want the built-in one", m)
	}
	if m := pickAlias([]string{"gone"}, paths, nil); m != "" {
		t.Errorf("picked %q for a module the kernel lacks", m)
	}
}

func TestReadBuiltinAliases(t *testing.T) {
	p := filepath.Join(t.TempDir(), "modules.builtin.modinfo")
	data := "sha256_generic.alias=crypto-sha256\x00sha256_generic.alias=sha256\x00sha256_generic.license=GPL\x00ext4.alias=fs-ext4\x00pci_stub.alias=pci:v*\x00"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	a := map[string][]string{"sha256": {"sha256_ssse3"}}
	if err := readBuiltinAliases(p, a); err != nil {
		t.Fatal(err)
	}
	if got := a["sha256"]; !reflect.DeepEqual(got, []string{"sha256_ssse3", "sha256_generic"}) {
		t.Errorf("sha256 -> %v", got)
	}
	if _, ok := a["pci:v*"]; ok {
		t.Error("a wildcard alias was kept")
	}
	paths := map[string]string{"sha256_ssse3": "x.ko"}
	if m := pickAlias(a["sha256"], paths, map[string]bool{"sha256_generic": true}); m != "sha256_generic" {
		t.Errorf("picked %q, want the built-in generic one", m)
	}
	if err := readBuiltinAliases(filepath.Join(t.TempDir(), "none"), a); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
