package transfer

import (
	"encoding/binary"
	"hash/maphash"
)

// The text sum: a quicker way for the verification to compare a MySQL
// target's rows with the rows this run loaded into it.
//
// The row checksum of the manifest sums the sha256 of each row's line.
// To compare a loaded table with it, the verification reads every row
// back, writes its line and takes its sha256: on MySQL, where the server
// sends every value as its text, the lines and their sha256 are nearly a
// fifth of ferry's CPU in an import. But the lines are made from those
// texts, value by value (see rawCol), so when each value's text is the
// one the export holds, the lines are the export's lines too. So, for a table whose rows this run
// fed from the export as they are (not mapped, not converted, none read
// in slices), the import sums the lines it feeds as the manifest does,
// and a keyed hash of each row's values (their texts, integers' digits,
// bytes); the verification sums the same hash of each row's texts as
// the server sends them. When the lines add up to the manifest's row
// checksum, and the hashes read back to the hashes fed, with as many
// rows, the target holds the rows the export summed. Any difference,
// even one the lines would not show, reads the table again the
// canonical way, which decides and reports as before.
//
// The hash is two 64-bit hash/maphash lanes, with seeds made for the
// import, summed modulo 2^128 as rowSum sums the sha256 of lines: not a
// cryptographic hash, but one that no one outside the import can aim a
// collision at, and that two different sets of rows match by chance
// about once in 2^128.

// A value's class in the text hash: how its column turns its text into
// a line.
const (
	// classNone: a column whose text is not what the export holds (a
	// FLOAT's, see float32Raw); a table with one has no text sum.
	classNone  = 0
	classNull  = 'n' // NULL, with no text
	classInt   = 'i' // digits, written as a JSON number
	classText  = 't' // text, written as a JSON string
	classBytes = 'b' // bytes, written in base64
	// classOther spoils a row's hash (a row read in slices, a value of
	// a column of classNone): it matches no row fed.
	classOther = 0xff
)

// textHash hashes rows for the text sum.
type textHash struct{ seeds [2]maphash.Seed }

func newTextHash() *textHash {
	return &textHash{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

// add adds the row whose values appendText wrote into row.
func (h *textHash) add(s *rowSum, row []byte) {
	s.addPair(maphash.Bytes(h.seeds[0], row), maphash.Bytes(h.seeds[1], row))
}

// appendText appends a value of class c with text b to a row's hash
// input: its class, its length and its bytes (the class alone for
// NULL), so that no two rows of different values write the same input.
func appendText[S ~string | ~[]byte](buf []byte, c byte, b S) []byte {
	buf = append(buf, c)
	if c == classNull {
		return buf
	}
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// appendRowText appends row's values, as the export holds them, to a
// row's hash input; false when a value has no text of a MySQL server's (a
// float or a boolean: a MySQL export has neither).
func appendRowText(buf []byte, row []value) ([]byte, bool) {
	for _, v := range row {
		switch v.kind {
		case kNull:
			buf = appendText(buf, classNull, "")
		case kInt:
			buf = appendText(buf, classInt, v.s)
		case kText:
			buf = appendText(buf, classText, v.s)
		case kBytes:
			buf = appendText(buf, classBytes, v.b)
		default:
			return buf, false
		}
	}
	return buf, true
}
