// The extraction group of bench_memory (memory_extraction_figures.cpp): what automatic memory
// extraction costs over a scripted conversation of 100 turns.
#pragma once

#include "bench_report.h"

namespace parley::bench {

// Runs MemoryExtractor against the fake LLM server over the scripted conversation and adds the
// figures (calls, calls per turn worth reading, prompt tokens per call) to `report`.
void bench_extraction(Report& report);

}  // namespace parley::bench
