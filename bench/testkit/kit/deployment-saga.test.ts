import { defineSuite } from '../suite.js';

defineSuite('kit', 'deployment-saga');
