// The histogram kernels' limits and work split (kernels/histogram.cpp),
// shared with their tests so that test sizes can cross every boundary.
//
// Each histogram is counted in leaves of kHistogramLeafElements values: a
// leaf counts into private 32-bit sub-histograms on its stack and adds them
// into the output once, so a leaf may run on any worker, or on the same
// worker as another leaf of the same task while parallel_for waits for a
// stolen part (leaves themselves never fork). A range
// of one leaf or less is counted serially and stored. histogram_u32 with
// more than kHistogramMaxPrivateBins bins has no private copy (it would not
// fit a worker's stack comfortably) and counts serially straight into the
// output.
#pragma once

#include <cstdint>

namespace beat {

// histogram_u8's bin count: one per byte value.
inline constexpr std::uint64_t kHistogramU8Bins = 256;
// histogram_u32's limits: bins in [1, kHistogramMaxBins], shift in
// [0, kHistogramMaxShift]. 65,536 bins of u64 are 512 KiB of output, as
// fine a histogram of 32-bit values as one pass over L2 can fill well
// (coarser ones come from a larger shift).
inline constexpr std::uint64_t kHistogramMaxBins = 65536;
inline constexpr std::uint64_t kHistogramMaxShift = 31;
// Values per leaf: 64 Ki bytes or u32s (~40 us and ~70 us of counting on
// the 2-core development machine), enough to repay a leaf's zeroing and
// merge of up to 4 x 1025 private counters, and far below 2^32, so a
// leaf's 32-bit counters never overflow.
inline constexpr std::uint64_t kHistogramLeafElements = std::uint64_t{1} << 16;
// Largest bin count histogram_u32 counts in parallel through private
// sub-histograms (4 x 1025 x 4 bytes = 16 KiB of stack per leaf).
inline constexpr std::uint64_t kHistogramMaxPrivateBins = 1024;

}  // namespace beat
