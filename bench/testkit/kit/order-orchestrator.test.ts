import { defineSuite } from '../suite.js';

defineSuite('kit', 'order-orchestrator');
