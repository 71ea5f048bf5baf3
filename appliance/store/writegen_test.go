package store

import (
	"testing"

	"go.etcd.io/bbolt"
)

func TestWriteGenRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	if w, err := s.WriteGen(); err != nil || w != (WriteGen{}) {
		t.Fatalf("new store: %+v, %v; want the zero generation", w, err)
	}
	for _, w := range []WriteGen{{Gen: 7, Epoch: 1 << 40, Dirty: true}, {Gen: 8}} {
		if err := s.PutWriteGen(w); err != nil {
			t.Fatal(err)
		}
		if got, err := s.WriteGen(); err != nil || got != w {
			t.Fatalf("WriteGen = %+v, %v; want %+v", got, err, w)
		}
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketSettings)).Put([]byte(keyWriteGen), []byte{1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteGen(); err == nil {
		t.Fatal("a corrupt write generation was read without an error")
	}
}
