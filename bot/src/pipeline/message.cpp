#include "parley/bot/pipeline/message.h"

namespace parley::bot::pipeline {

std::string_view to_string(TurnStop stop) noexcept {
  switch (stop) {
    case TurnStop::answered: return "answered";
    case TurnStop::iteration_limit: return "iteration_limit";
    case TurnStop::deadline: return "deadline";
    case TurnStop::llm_error: return "llm_error";
    case TurnStop::budget: return "budget";
    case TurnStop::command: return "command";
    case TurnStop::no_llm: return "no_llm";
    case TurnStop::context_error: return "context_error";
    case TurnStop::duplicate: return "duplicate";
    case TurnStop::overloaded: return "overloaded";
    case TurnStop::storage_error: return "storage_error";
    case TurnStop::refused: return "refused";
    case TurnStop::rate_limited: return "rate_limited";
  }
  return "unknown";
}

}  // namespace parley::bot::pipeline
