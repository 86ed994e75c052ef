/** The float64 reference model (the oracle for the tfjs core): one import for tests. */
export { erf } from './erf.ts';
export { finiteDiffGrad } from './finite-diff.ts';
export {
  cellParallelHead,
  cellRecurrentHead,
  cellStepHead,
  mlstmForward,
  mlstmInitState,
  mlstmStep,
  NORM_EXP_CAP,
  type CellForm,
  type MlstmState,
} from './mlstm.ts';
export {
  crossEntropy,
  refForward,
  refInit,
  refInitState,
  refLoss,
  refStep,
  type RefBlockState,
  type RefForm,
  type RefState,
} from './model.ts';
export {
  causalConv,
  causalConvStep,
  gelu,
  groupNorm,
  layerNorm,
  linear,
  logsigmoid,
  map,
  NORM_EPS,
  sigmoid,
  silu,
  softplus,
} from './ops.ts';
export { headwise, slstmForward, slstmInitState, slstmStep, type SlstmState } from './slstm.ts';
export { checkParams, type RefParams } from './weights.ts';
