/** Registers the gradients of every kernel the core differentiates through (tfjs-core registers none). */
