import { defineSuite } from '../suite.js';

defineSuite('harness', 'order-orchestrator');
