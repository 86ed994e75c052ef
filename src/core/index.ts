/**
 * The xLSTM core on tfjs: configuration, parameters, blocks, the language model, loss and sampling.
 * Imports only tfjs-core and util/. Shape legend: B batch, T time, d = inp_dim, nh heads, dh head
 * width, H = nh*dh, dm mLSTM inner width, P sLSTM MLP width, k conv taps, V vocabulary.
 * Paper symbols (C, n, m, i', f') appear in the cell code only.
 */
export * from './config.ts';
export * from './params.ts';
export { initNamed, drawParam } from './init.ts';
export { XlstmModel, type NamedArray } from './model.ts';
export { FORMS, formByName, type FormName } from './mlstm/forms.ts';
export { concatStates, gatherState, disposeState, keepState, type ModelState, type BlockState } from './state.ts';
export { nextTokenLoss } from './loss.ts';
export { sampleToken, validateSampling, GREEDY, type SamplingParams } from './sampling.ts';
export { mapWeights, takesWeightDecay, weightEntries, type ModelWeights } from './weights.ts';
