import type { Definition } from '../src/index.js';
import { Counter } from './basics/counter.js';
import { Greeter } from './basics/greeter.js';
import { OrderWorkflow } from './basics/order-workflow.js';
import { orchestrators } from './orchestrators.js';
import { sagas } from './sagas.js';

/** Every definition the example app serves. Later examples add theirs here. */
export const services: Definition[] = [Greeter, Counter, OrderWorkflow, ...sagas, ...orchestrators];
