package kernel

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseModinfo(t *testing.T) {
	raw := "alias=md-personality-4\x00license=GPL\x00depends=md-mod,async_xor,raid6_pq\x00" +
		"softdep=pre: crc32c post: foo\x00intree=Y\x00name=raid456\x00vermagic=6.1.0 SMP\x00\x00"
	mi, err := ParseModinfo([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := Modinfo{Name: "raid456", Depends: []string{"md_mod", "async_xor", "raid6_pq"}, SoftPre: []string{"crc32c"}}
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
